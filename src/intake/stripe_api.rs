//! The Stripe API calls intake makes: a Checkout Session's line items, and the list of
//! complete sessions for reconciliation.

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
    let path = format!("/v1/checkout/sessions/{session_id}/line_items?limit=100");
    let (data, _) = list(http, config, api_key, &path).await?;
    Ok(data.iter().map(item).collect())
}

/// GETs one page of a Stripe list: its `data` and `has_more`.
async fn list(
    http: &reqwest::Client,
    config: &StripeConfig,
    api_key: &str,
    path: &str,
) -> Result<(Vec<Value>, bool), Error> {
    let url = format!("{}{path}", config.api_base.trim_end_matches('/'));
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
    Ok((data.clone(), body["has_more"].as_bool().unwrap_or(false)))
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
    let mut sessions = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut path = format!("/v1/checkout/sessions?limit=100&status=complete&created%5Bgte%5D={since}");
        if let Some(last) = &after {
            path.push_str(&format!("&starting_after={last}"));
        }
        let (page, has_more) = list(http, config, api_key, &path).await?;
        after = page.last().and_then(|s| s["id"].as_str()).map(str::to_owned);
        sessions.extend(page);
        if !has_more || after.is_none() {
            return Ok(sessions);
        }
    }
    Err(Error::Refused(format!("more than {} sessions; reconcile a shorter period", MAX_PAGES * 100)))
}
