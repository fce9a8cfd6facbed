//! The Stripe API calls intake makes: creating a Checkout Session, a session's line items,
//! and the list of complete sessions for reconciliation.

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

/// A line of a Checkout kiln starts: Stripe's inline `price_data`.
#[derive(Debug, Clone)]
pub struct CheckoutLine {
    /// Product name shown on Stripe's page.
    pub name: String,
    /// Price of one, in the currency's smallest unit.
    pub unit_amount: i64,
    /// How many.
    pub quantity: u32,
}

/// What a Checkout Session is created with.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// The order's reference (`client_reference_id`, `metadata[kiln_order]`).
    pub reference: &'a str,
    /// The order's workflow (`metadata[kiln_workflow]`).
    pub workflow: &'a str,
    /// Lowercase ISO currency code.
    pub currency: &'a str,
    /// What is paid for.
    pub lines: &'a [CheckoutLine],
    /// The customer's email, prefilled on Stripe's page.
    pub email: Option<&'a str>,
    /// Where the customer lands after paying.
    pub success_url: &'a str,
    /// Where the customer lands after giving up.
    pub cancel_url: &'a str,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// `cs_…`.
    pub id: String,
    /// Stripe's hosted payment page.
    pub url: String,
}

/// The form fields of `POST /v1/checkout/sessions`, in Stripe's bracket notation.
pub fn session_form(new: &NewSession<'_>) -> Vec<(String, String)> {
    let mut form = vec![
        ("mode".to_owned(), "payment".to_owned()),
        ("client_reference_id".to_owned(), new.reference.to_owned()),
        ("success_url".to_owned(), new.success_url.to_owned()),
        ("cancel_url".to_owned(), new.cancel_url.to_owned()),
        ("metadata[kiln_order]".to_owned(), new.reference.to_owned()),
        ("metadata[kiln_workflow]".to_owned(), new.workflow.to_owned()),
    ];
    if let Some(email) = new.email {
        form.push(("customer_email".to_owned(), email.to_owned()));
    }
    for (i, line) in new.lines.iter().enumerate() {
        let p = format!("line_items[{i}]");
        form.push((format!("{p}[price_data][currency]"), new.currency.to_owned()));
        form.push((format!("{p}[price_data][unit_amount]"), line.unit_amount.to_string()));
        form.push((format!("{p}[price_data][product_data][name]"), line.name.clone()));
        form.push((format!("{p}[quantity]"), line.quantity.to_string()));
    }
    form
}

/// `POST /v1/checkout/sessions`, form-encoded as Stripe's API takes it, with an
/// `Idempotency-Key` so that a retry after a lost answer creates no second session.
pub async fn create_session(
    http: &reqwest::Client,
    config: &StripeConfig,
    api_key: &str,
    idempotency_key: &str,
    new: &NewSession<'_>,
) -> Result<Created, Error> {
    let url = format!("{}/v1/checkout/sessions", config.api_base.trim_end_matches('/'));
    let res = http
        .post(url)
        .bearer_auth(api_key)
        .header("Stripe-Version", &config.api_version)
        .header("Idempotency-Key", idempotency_key)
        .form(&session_form(new))
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
    match (body["id"].as_str(), body["url"].as_str()) {
        (Some(id), Some(url)) if !id.is_empty() && !url.is_empty() => {
            Ok(Created { id: id.to_owned(), url: url.to_owned() })
        }
        _ => Err(Error::Refused("Stripe API's answer has no session `id` and `url`".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_encoded_in_stripes_bracket_notation() {
        let lines = [CheckoutLine { name: "Poster A2".to_owned(), unit_amount: 1250, quantity: 3 }];
        let new = NewSession {
            reference: "K-000007",
            workflow: "print",
            currency: "eur",
            lines: &lines,
            email: Some("ana@example.com"),
            success_url: "https://kiln.example/t/abc",
            cancel_url: "https://kiln.example/t/abc",
        };
        let form = session_form(&new);
        let get = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("mode"), Some("payment"));
        assert_eq!(get("client_reference_id"), Some("K-000007"));
        assert_eq!(get("line_items[0][price_data][unit_amount]"), Some("1250"));
        assert_eq!(get("line_items[0][price_data][product_data][name]"), Some("Poster A2"));
        assert_eq!(get("line_items[0][quantity]"), Some("3"));
        assert_eq!(get("metadata[kiln_order]"), Some("K-000007"));
    }
}
