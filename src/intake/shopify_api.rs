//! The Shopify Admin API calls kiln makes: product types for routing and the stage
//! metafield (GraphQL), and the recent orders for reconciliation (REST, the same Order
//! resource webhooks carry).

use secrecy::ExposeSecret;
use serde_json::{Value, json};

use super::config::{MetafieldConfig, ShopifyConfig};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Worth retrying: the network, a timeout, throttling, 5xx, or `userErrors`.
    Transient(String),
    /// Will not work by retrying: no token, other 4xx, an answer kiln cannot read.
    Refused(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Transient(e) | Error::Refused(e) => f.write_str(e),
        }
    }
}

fn token(config: &ShopifyConfig) -> Result<&str, Error> {
    config
        .access_token
        .as_ref()
        .map(|t| t.expose_secret())
        .ok_or_else(|| Error::Refused("[intake.shopify] has no access_token".to_owned()))
}

fn classify(status: reqwest::StatusCode, body: &Value) -> Result<(), Error> {
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Error::Transient(format!("Shopify Admin API answered {status}")));
    }
    if !status.is_success() {
        let message = body["errors"].to_string();
        return Err(Error::Refused(format!("Shopify Admin API answered {status}: {message}")));
    }
    Ok(())
}

/// One GraphQL request to the Admin API; its `data`, or the errors it reported.
pub async fn graphql(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    query: &str,
    variables: Value,
) -> Result<Value, Error> {
    let url = format!("{}/admin/api/{}/graphql.json", config.admin_base(), config.api_version);
    let res = http
        .post(url)
        .header("X-Shopify-Access-Token", token(config)?)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .map_err(|e| Error::Transient(format!("Shopify Admin API: {e}")))?;
    let status = res.status();
    let body: Value = res.json().await.unwrap_or(Value::Null);
    classify(status, &body)?;
    // GraphQL reports throttling and query errors with 200 and a top-level `errors` list.
    if let Some(errors) = body["errors"].as_array().filter(|e| !e.is_empty()) {
        let throttled =
            errors.iter().any(|e| e.pointer("/extensions/code").and_then(Value::as_str) == Some("THROTTLED"));
        let message = format!("Shopify Admin API errors: {}", Value::Array(errors.clone()));
        return Err(if throttled { Error::Transient(message) } else { Error::Refused(message) });
    }
    Ok(body["data"].clone())
}

const PRODUCT_TYPES: &str =
    "query kilnProductTypes($ids: [ID!]!) { nodes(ids: $ids) { ... on Product { id productType } } }";

/// The product type of each of `product_ids` Shopify knows, as `(id, type)`.
pub async fn product_types(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    product_ids: &[i64],
) -> Result<Vec<(i64, String)>, Error> {
    let ids: Vec<String> = product_ids.iter().map(|id| format!("gid://shopify/Product/{id}")).collect();
    let data = graphql(http, config, PRODUCT_TYPES, json!({ "ids": ids })).await?;
    let nodes = data["nodes"].as_array().ok_or_else(|| Error::Refused("the answer has no `nodes`".to_owned()))?;
    Ok(nodes
        .iter()
        .filter_map(|n| {
            let id = n["id"].as_str()?.rsplit('/').next()?.parse().ok()?;
            Some((id, n["productType"].as_str().unwrap_or("").to_owned()))
        })
        .collect())
}

const METAFIELDS_SET: &str = "mutation kilnStage($metafields: [MetafieldsSetInput!]!) { \
    metafieldsSet(metafields: $metafields) { metafields { id } userErrors { field message code } } }";

/// Writes `value` (JSON) to the order's metafield with `metafieldsSet`; `userErrors` are a
/// failure (retried by the outbox).
pub async fn set_order_metafield(
    http: &reqwest::Client,
    config: &ShopifyConfig,
    field: &MetafieldConfig,
    order_id: &str,
    value: &Value,
) -> Result<String, Error> {
    let variables = json!({ "metafields": [{
        "ownerId": format!("gid://shopify/Order/{order_id}"),
        "namespace": field.namespace,
        "key": field.key,
        "type": "json",
        "value": value.to_string(),
    }]});
    let data = graphql(http, config, METAFIELDS_SET, variables).await?;
    let result = &data["metafieldsSet"];
    if let Some(errors) = result["userErrors"].as_array().filter(|e| !e.is_empty()) {
        return Err(Error::Transient(format!("metafieldsSet userErrors: {}", Value::Array(errors.clone()))));
    }
    let id = result.pointer("/metafields/0/id").and_then(Value::as_str);
    id.map(str::to_owned).ok_or_else(|| Error::Refused("metafieldsSet answered no metafield".to_owned()))
}

/// Most pages one reconciliation reads (250 orders each).
const MAX_PAGES: usize = 40;

/// Every order created at or after `since` (RFC 3339), as the REST Order resource, following
/// the `Link: <…>; rel="next"` pages.
pub async fn orders_since(http: &reqwest::Client, config: &ShopifyConfig, since: &str) -> Result<Vec<Value>, Error> {
    let mut url = url::Url::parse(&format!("{}/admin/api/{}/orders.json", config.admin_base(), config.api_version))
        .map_err(|e| Error::Refused(format!("admin_base: {e}")))?;
    url.query_pairs_mut().append_pair("status", "any").append_pair("limit", "250").append_pair("created_at_min", since);
    let mut orders = Vec::new();
    for _ in 0..MAX_PAGES {
        let res = http
            .get(url.clone())
            .header("X-Shopify-Access-Token", token(config)?)
            .send()
            .await
            .map_err(|e| Error::Transient(format!("Shopify Admin API: {e}")))?;
        let status = res.status();
        let next = res.headers().get("link").and_then(|l| l.to_str().ok()).and_then(next_link);
        let body: Value = res.json().await.unwrap_or(Value::Null);
        classify(status, &body)?;
        let page = body["orders"].as_array().ok_or_else(|| Error::Refused("the answer has no `orders`".to_owned()))?;
        orders.extend(page.iter().cloned());
        match next.and_then(|n| url::Url::parse(&n).ok()) {
            Some(n) => url = n,
            None => return Ok(orders),
        }
    }
    Err(Error::Refused(format!("more than {} orders; reconcile a shorter period", MAX_PAGES * 250)))
}

/// The `rel="next"` URL of a `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| target.trim().trim_start_matches('<').trim_end_matches('>').to_owned())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        let h = r#"<https://s.myshopify.com/admin/api/2025-01/orders.json?page_info=abc&limit=250>; rel="previous", <https://s.myshopify.com/admin/api/2025-01/orders.json?page_info=def&limit=250>; rel="next""#;
        assert_eq!(
            super::next_link(h).as_deref(),
            Some("https://s.myshopify.com/admin/api/2025-01/orders.json?page_info=def&limit=250")
        );
        assert_eq!(super::next_link(r#"<https://x/y>; rel="previous""#), None);
    }
}
