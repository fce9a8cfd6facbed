//! Webhooks into kiln (`/hooks/…`). Each is verified on its raw bytes before anything parses
//! it, recorded in the inbox (deduplicated on the sender's event id), and answered 2xx only
//! once recorded; the applier acts on it afterwards.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use secrecy::ExposeSecret;
use serde_json::json;

use crate::intake::{shopify, shopify_apply, stripe, workshop};
use crate::service::Service;
use crate::standard_webhooks;
use crate::store::inbox;
use crate::web::AppState;
use crate::web::error::ApiError;

/// Routes under `/hooks`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/hooks/stripe", post(stripe_hook))
        .route("/hooks/workshop", post(workshop_hook))
        .route("/hooks/shopify", post(shopify_hook))
}

/// `POST /hooks/stripe`: a Stripe event, signed with `Stripe-Signature`.
async fn stripe_hook(
    State(service): State<Service>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Some(config) = &service.config().intake.stripe else {
        return Err(ApiError::not_found("Stripe intake is not configured on this kiln"));
    };
    let secrets: Vec<&str> = config.webhook_secrets.iter().map(|s| s.expose_secret()).collect();
    let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    // Refused deliveries are recorded nowhere: anyone can post here.
    stripe::verify(header, &body, &secrets, chrono::Utc::now().timestamp()).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-signature", "Signature refused", e.to_string())
            .field("Stripe-Signature")
    })?;
    let payload = std::str::from_utf8(&body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad-body", "Body refused", "the body is not UTF-8"))?;
    let event = stripe::envelope(&body)
        .map_err(|why| ApiError::new(StatusCode::BAD_REQUEST, "bad-body", "Body refused", why))?;
    let delivery = inbox::NewDelivery {
        source: "stripe",
        event_id: &event.id,
        delivery_id: None,
        topic: &event.topic,
        subject: event.subject.as_deref(),
        occurred_at: None,
        payload,
    };
    record(&service, &delivery).await
}

/// `POST /hooks/workshop`: the workshop system's events, signed with Standard Webhooks.
async fn workshop_hook(
    State(service): State<Service>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Some(config) = &service.config().intake.workshop else {
        return Err(ApiError::not_found("the workshop webhook is not configured on this kiln"));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let id = header("webhook-id");
    standard_webhooks::verify(
        &config.keys(),
        id,
        header("webhook-timestamp"),
        header("webhook-signature"),
        &body,
        chrono::Utc::now().timestamp(),
    )
    .map_err(|e| {
        ApiError::new(StatusCode::UNAUTHORIZED, "bad-signature", "Signature refused", e.to_string())
            .field("webhook-signature")
    })?;
    let (Some(id), Ok(payload)) = (id, std::str::from_utf8(&body)) else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad-body", "Body refused", "the body is not UTF-8"));
    };
    // A body kiln cannot read is still recorded (and marked ignored with the reason), so the
    // sender is not told to retry something that can never apply.
    let parsed = workshop::parse(&body).ok();
    let subject = parsed.as_ref().map(|e| e.order.subject());
    let delivery = inbox::NewDelivery {
        source: "workshop",
        event_id: id,
        delivery_id: None,
        topic: workshop::STAGE_CHANGED,
        subject: subject.as_deref(),
        occurred_at: parsed.as_ref().map(|e| e.occurred_at),
        payload,
    };
    record(&service, &delivery).await
}

/// `POST /hooks/shopify`: a Shopify webhook, signed with `X-Shopify-Hmac-Sha256`.
async fn shopify_hook(
    State(service): State<Service>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let Some(config) = &service.config().intake.shopify else {
        return Err(ApiError::not_found("Shopify intake is not configured on this kiln"));
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    let secrets: Vec<&str> = config.webhook_secrets.iter().map(|s| s.expose_secret()).collect();
    // Refused deliveries are recorded nowhere: anyone can post here.
    if !shopify::verify(header("x-shopify-hmac-sha256"), &body, &secrets) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad-signature",
            "Signature refused",
            "X-Shopify-Hmac-Sha256 is missing or matches no configured secret",
        )
        .field("X-Shopify-Hmac-Sha256"));
    }
    let bad = |field: &str, why: &str| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad-body", "Delivery refused", why.to_owned()).field(field)
    };
    let topic = header("x-shopify-topic").ok_or_else(|| bad("X-Shopify-Topic", "the header is missing"))?;
    let webhook_id =
        header("x-shopify-webhook-id").ok_or_else(|| bad("X-Shopify-Webhook-Id", "the header is missing"))?;
    let payload = std::str::from_utf8(&body).map_err(|_| bad("body", "the body is not UTF-8"))?;
    let shop = header("x-shopify-shop-domain").unwrap_or(&config.shop_domain);
    // Deduplicated on the webhook id and on (topic, event id); order topics also carry the
    // business key (shop, order id) as their subject: one order's events apply in order, and
    // the order made for it is unique.
    let event_id = match header("x-shopify-event-id") {
        Some(event) => format!("{topic}:{event}"),
        None => format!("webhook:{webhook_id}"),
    };
    let order = shopify::ORDER_TOPICS.contains(&topic).then(|| shopify::order(&body).ok()).flatten();
    // A customer's compliance requests apply one at a time, in arrival order (an export asked
    // for before an erasure is made before it).
    let subject = match &order {
        Some(o) => Some(shopify_apply::order_key(shop, o.id)),
        None if shopify::COMPLIANCE_TOPICS.contains(&topic) => {
            shopify::compliance(&body).ok().map(|c| shopify::compliance_subject(&c))
        }
        None => None,
    };
    let delivery = inbox::NewDelivery {
        source: "shopify",
        event_id: &event_id,
        delivery_id: Some(webhook_id),
        topic,
        subject: subject.as_deref(),
        occurred_at: order.as_ref().and_then(|o| o.updated_at),
        payload,
    };
    record(&service, &delivery).await
}

/// Records a verified delivery and wakes the applier; a database failure asks the sender to
/// come back (nothing was recorded).
async fn record(
    service: &Service,
    delivery: &inbox::NewDelivery<'_>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let recorded = service.record_delivery(delivery).await.map_err(|e| {
        tracing::warn!(error = %e.chain(), source = delivery.source, event = delivery.event_id, "cannot record a webhook");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "inbox-unavailable",
            "Not recorded",
            "the event could not be recorded; send it again",
        )
        .retry_after(5)
    })?;
    Ok((StatusCode::OK, Json(json!({ "received": true, "duplicate": !recorded }))))
}
