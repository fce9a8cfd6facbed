//! Opting out of messages without logging in: `/u/{token}` (the order's tracking token) shows
//! a choice; a POST opts out of this order or of every message to the customer's addresses.
//! A POST with `List-Unsubscribe=One-Click` (RFC 8058, sent by mail clients) opts out of the
//! order.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::render::Message;
use super::{Peer, lookup};
use crate::i18n::Bundle;
use crate::web::AppState;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page in the tracking page's look, with a way back to the order.
fn page(state: &AppState, t: &Bundle, token: &str, text: String, extra: Option<String>) -> Response {
    let message = Message {
        title: t.t("track.unsub_title").to_owned(),
        text,
        quote: None,
        extra,
        back: Some((format!("/t/{token}"), t.t("track.back").to_owned())),
    };
    match state.portal.renderer.message_page(t, &message) {
        Ok(html) => state.portal.html(StatusCode::OK, html),
        Err(e) => {
            tracing::error!(error = %e, "cannot render the unsubscribe page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
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
    let shop = &state.service.config().shop.name;
    let reference = snapshot.order.reference.to_string();
    let button = |scope: &str, text: String, class: &str| {
        format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"scope\" value=\"{scope}\"><button type=\"submit\"{class}>{}</button></form>",
            escape(&text)
        )
    };
    let forms = format!(
        "{}{}",
        button("order", t.fill("track.unsub_order", &[("reference", &reference)]), " class=\"primary\""),
        button("all", t.fill("track.unsub_all", &[("shop", shop)]), ""),
    );
    page(&state, &t, &token, t.fill("track.unsub_text", &[("shop", shop)]), Some(forms))
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
    page(&state, &t, &token, t.t("track.unsub_done").to_owned(), None)
}
