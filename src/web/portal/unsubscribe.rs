//! Opting out of messages without logging in: `/u/{token}` (the order's tracking token) shows
//! a choice; a POST opts out of this order or of every message to the customer's addresses.
//! A POST with `List-Unsubscribe=One-Click` (RFC 8058, sent by mail clients) opts out of the
//! order.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::guard::private_headers;
use super::{PRIVATE, Peer, lookup};
use crate::web::AppState;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn page(lang: &str, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" \
         content=\"width=device-width,initial-scale=1\"><title>{title}</title></head><body style=\"font-family:system-ui,\
         sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;line-height:1.5\"><h1>{title}</h1>{body}</body></html>"
    );
    let mut res = (StatusCode::OK, html).into_response();
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    private_headers(headers, PRIVATE);
    res
}

/// The choice.
pub async fn show(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let snapshot = match lookup(&state, peer, &headers, &token).await {
        Ok(s) => s,
        Err(refused) => return state.portal.refused(refused),
    };
    let t = state.portal.renderer.strings(snapshot.order.customer.language.as_str());
    let shop = escape(&state.service.config().shop.name);
    let reference = snapshot.order.reference.to_string();
    let button = |scope: &str, text: String| {
        format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"scope\" value=\"{scope}\"><p><button type=\"submit\">{}</button></p></form>",
            escape(&text)
        )
    };
    let body = format!(
        "<p>{}</p>{}{}",
        escape(&t.fill("track.unsub_text", &[("shop", &shop)])),
        button("order", t.fill("track.unsub_order", &[("reference", &reference)])),
        button("all", t.fill("track.unsub_all", &[("shop", &shop)])),
    );
    page(t.language(), &escape(t.t("track.unsub_title")), &body)
}

/// The opt-out itself.
pub async fn opt_out(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let snapshot = match lookup(&state, peer, &headers, &token).await {
        Ok(s) => s,
        Err(refused) => return state.portal.refused(refused),
    };
    let all = url::form_urlencoded::parse(&body).any(|(k, v)| k == "scope" && v == "all");
    let order = &snapshot.order;
    let mut scopes = vec![format!("order:{}", order.id)];
    if all {
        scopes.extend(order.customer.email.as_ref().map(|e| format!("address:{}", e.as_str().to_lowercase())));
        scopes.extend(order.customer.phone.as_ref().map(|p| format!("address:{}", p.as_str())));
    }
    if let Err(e) = state.service.opt_out(&scopes).await {
        tracing::error!(error = %e.chain(), "cannot record an opt-out");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    tracing::info!(order = %order.reference, all, "customer opted out of messages");
    let t = state.portal.renderer.strings(order.customer.language.as_str());
    page(t.language(), &escape(t.t("track.unsub_title")), &format!("<p>{}</p>", escape(t.t("track.unsub_done"))))
}
