//! The stage write-back (seed 1 keeps the stage in order metafields): every stage change of an
//! order that came from Shopify becomes an outbox delivery on the `shopify` channel, sent with
//! the Admin GraphQL API's `metafieldsSet` — retried with backoff and logged per attempt like
//! any message, `userErrors` counted as a failure, and never in the way of the move itself.

use serde_json::{Value, json};

use super::config::ShopifyConfig;
use super::shopify_api;
use crate::domain::model::{Event, Order};
use crate::domain::transition::EventKind;
use crate::notify::outcome::Outcome;

/// The outbox channel of write-backs.
pub const CHANNEL: &str = "shopify";

/// The message to queue for `event` of `order`, if the write-back is on and the event put the
/// order into a stage.
pub fn message(
    config: &ShopifyConfig,
    order: &Order,
    event: &Event,
    label: &str,
    tracking_url: Option<&str>,
) -> Option<Value> {
    config.metafield.as_ref()?;
    let shopify_id = order.external_ids.shopify.as_ref()?;
    if !matches!(event.kind, EventKind::Created | EventKind::Moved | EventKind::Paid) {
        return None;
    }
    let stage = event.to_stage.as_ref()?;
    Some(json!({
        "order_id": shopify_id,
        "value": {
            "key": stage,
            "label": label,
            "tracking_url": tracking_url,
            "updated_at": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        },
    }))
}

/// Sends a queued write-back.
pub async fn send(http: &reqwest::Client, config: Option<&ShopifyConfig>, message: &Value) -> Outcome {
    let Some((config, field)) = config.and_then(|c| c.metafield.as_ref().map(|f| (c, f))) else {
        return Outcome::Permanent { detail: "the Shopify write-back is not configured any more".to_owned() };
    };
    let (Some(order_id), value) = (message["order_id"].as_str(), &message["value"]) else {
        return Outcome::Permanent { detail: "the queued write-back names no Shopify order".to_owned() };
    };
    match shopify_api::set_order_metafield(http, config, field, order_id, value).await {
        Ok(id) => Outcome::Sent { detail: format!("metafield {id}") },
        Err(shopify_api::Error::Transient(detail)) => Outcome::Retry { detail, after: None },
        Err(shopify_api::Error::Refused(detail)) => Outcome::Permanent { detail },
    }
}
