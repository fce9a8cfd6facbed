//! The one Stripe API call intake makes: a Checkout Session's line items.

use serde_json::{Value, json};

use super::config::StripeConfig;
use crate::domain::model::LineItem;

/// Why the call failed.
#[derive(Debug)]
pub enum Error {
    /// Worth retrying: the network, a timeout, 429 or 5xx.
    Transient(String),
    /// Will not work by retrying: other 4xx, or an answer that is not a list.
    Refused(String),
}

/// `GET /v1/checkout/sessions/{id}/line_items` (first 100), as kiln line items.
pub async fn line_items(
    http: &reqwest::Client,
    config: &StripeConfig,
    api_key: &str,
    session_id: &str,
) -> Result<Vec<LineItem>, Error> {
    let base = config.api_base.trim_end_matches('/');
    let url = format!("{base}/v1/checkout/sessions/{session_id}/line_items?limit=100");
    let res = http
        .get(url)
        .bearer_auth(api_key)
        .header("Stripe-Version", &config.api_version)
        .send()
        .await
        .map_err(|e| Error::Transient(format!("Stripe API: {e}")))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Error::Transient(format!("Stripe API answered {status}")));
    }
    if !status.is_success() {
        let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message");
        return Err(Error::Refused(format!("Stripe API answered {status}: {message}")));
    }
    let Some(data) = body["data"].as_array() else {
        return Err(Error::Refused("Stripe API's answer has no `data` list".to_owned()));
    };
    Ok(data.iter().map(item).collect())
}

fn item(v: &Value) -> LineItem {
    let description = v["description"]
        .as_str()
        .or_else(|| v.pointer("/price/product/name").and_then(Value::as_str))
        .unwrap_or("Item")
        .to_owned();
    let quantity = v["quantity"].as_u64().and_then(|q| u32::try_from(q).ok()).filter(|q| *q >= 1).unwrap_or(1);
    LineItem {
        description,
        variant: None,
        quantity,
        material: None,
        metadata: json!({
            "stripe_line_item": v["id"],
            "amount_total": v["amount_total"],
            "currency": v["currency"],
            "price": v.pointer("/price/id"),
        }),
    }
}

/// Most pages of sessions one reconciliation reads (100 each).
const MAX_PAGES: usize = 100;

/// Every complete Checkout Session created at or after `since` (Unix seconds), newest first,
/// following Stripe's `has_more` / `starting_after` pagination.
pub async fn complete_sessions(
    http: &reqwest::Client,
    config: &StripeConfig,
    api_key: &str,
    since: i64,
) -> Result<Vec<Value>, Error> {
    let base = config.api_base.trim_end_matches('/');
    let mut sessions = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut url = format!("{base}/v1/checkout/sessions?limit=100&status=complete&created%5Bgte%5D={since}");
        if let Some(last) = &after {
            url.push_str(&format!("&starting_after={last}"));
        }
        let res = http
            .get(url)
            .bearer_auth(api_key)
            .header("Stripe-Version", &config.api_version)
            .send()
            .await
            .map_err(|e| Error::Transient(format!("Stripe API: {e}")))?;
        let status = res.status();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("no message");
            let error = format!("Stripe API answered {status}: {message}");
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                Error::Transient(error)
            } else {
                Error::Refused(error)
            });
        }
        let Some(page) = body["data"].as_array() else {
            return Err(Error::Refused("Stripe API's answer has no `data` list".to_owned()));
        };
        after = page.last().and_then(|s| s["id"].as_str()).map(str::to_owned);
        sessions.extend(page.iter().cloned());
        if !body["has_more"].as_bool().unwrap_or(false) || after.is_none() {
            return Ok(sessions);
        }
    }
    Err(Error::Refused(format!("more than {} sessions; reconcile a shorter period", MAX_PAGES * 100)))
}
