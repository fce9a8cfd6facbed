//! Shopify's side of intake, with no I/O: verifying `X-Shopify-Hmac-Sha256` as Shopify
//! documents it, reading order webhooks (the REST Order resource) and the compliance topics,
//! and choosing a workflow by the configured routes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::config::ShopifyRoute;
use crate::crypto::constant_time_eq;

/// Order topics kiln acts on.
pub const ORDER_TOPICS: [&str; 4] = ["orders/create", "orders/paid", "orders/updated", "orders/cancelled"];
/// The mandatory compliance topics.
pub const COMPLIANCE_TOPICS: [&str; 3] = ["customers/redact", "customers/data_request", "shop/redact"];

/// The base64 HMAC-SHA256 of the raw body keyed with the app's client secret, as Shopify puts
/// it in `X-Shopify-Hmac-Sha256`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Whether `header` is the signature of `body` under any of `secrets` (old and new while the
/// secret is rotated), compared in constant time.
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[&str]) -> bool {
    let Some(header) = header.map(str::trim).filter(|h| !h.is_empty()) else {
        return false;
    };
    let mut matched = false;
    for secret in secrets {
        // Every secret is tried, so that timing says nothing about which matched.
        matched |= constant_time_eq(sign(secret, body).as_bytes(), header.as_bytes());
    }
    matched
}

/// A line item of a Shopify order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Product title.
    pub title: String,
    /// Variant title (`Default Title` dropped).
    pub variant: Option<String>,
    /// How many.
    pub quantity: u32,
    /// SKU.
    pub sku: Option<String>,
    /// The product's numeric id (for its product type).
    pub product_id: Option<i64>,
    /// Shopify's line item id.
    pub id: Option<i64>,
}

/// The fields of a Shopify order kiln uses.
#[derive(Debug, Clone, PartialEq)]
pub struct ShopOrder {
    /// Numeric order id.
    pub id: i64,
    /// Its name in the shop, e.g. `#1001`.
    pub name: Option<String>,
    /// The customer's name.
    pub customer_name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// `customer_locale`, e.g. `it` or `en-US`.
    pub locale: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Line items.
    pub lines: Vec<Line>,
    /// Total and currency, as Shopify writes them (`"120.50"`, `EUR`).
    pub total: Option<(String, String)>,
    /// The order's note from the customer.
    pub note: Option<String>,
    /// When it last changed (ms), to order `orders/updated` events.
    pub updated_at: Option<i64>,
    /// The Shopify customer's id (for the compliance topics).
    pub customer_id: Option<i64>,
}

/// Reads an order webhook's body.
pub fn order(body: &[u8]) -> Result<ShopOrder, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let id = v["id"].as_i64().ok_or("the order has no numeric `id`")?;
    let text =
        |p: &str| v.pointer(p).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    let joined = |first: &str, last: &str| {
        let name = [text(first), text(last)].into_iter().flatten().collect::<Vec<_>>().join(" ");
        (!name.is_empty()).then_some(name)
    };
    let customer_name = joined("/customer/first_name", "/customer/last_name")
        .or_else(|| text("/billing_address/name"))
        .or_else(|| text("/shipping_address/name"));
    let lines = v["line_items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|li| {
                    let s = |k: &str| li[k].as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
                    Line {
                        title: s("title").or_else(|| s("name")).unwrap_or_else(|| "Item".to_owned()),
                        variant: s("variant_title").filter(|t| t != "Default Title"),
                        quantity: li["quantity"]
                            .as_u64()
                            .and_then(|q| u32::try_from(q).ok())
                            .filter(|q| *q >= 1)
                            .unwrap_or(1),
                        sku: s("sku"),
                        product_id: li["product_id"].as_i64(),
                        id: li["id"].as_i64(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let tags = v["tags"]
        .as_str()
        .map(|t| t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    let updated_at =
        text("/updated_at").and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok()).map(|t| t.timestamp_millis());
    Ok(ShopOrder {
        id,
        name: text("/name"),
        customer_name,
        email: text("/email").or_else(|| text("/contact_email")).or_else(|| text("/customer/email")),
        phone: text("/phone")
            .or_else(|| text("/customer/phone"))
            .or_else(|| text("/billing_address/phone"))
            .or_else(|| text("/shipping_address/phone")),
        locale: text("/customer_locale"),
        tags,
        lines,
        total: text("/total_price").zip(text("/currency")),
        note: text("/note"),
        updated_at,
        customer_id: v.pointer("/customer/id").and_then(Value::as_i64),
    })
}

/// A compliance request (`customers/redact`, `customers/data_request`, `shop/redact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compliance {
    /// The shop it is about.
    pub shop_domain: String,
    /// The customer's id, email and phone (customer topics).
    pub customer_id: Option<i64>,
    /// The customer's email.
    pub email: Option<String>,
    /// The customer's phone.
    pub phone: Option<String>,
    /// Order ids named (`orders_to_redact`, `orders_requested`).
    pub orders: Vec<i64>,
    /// Shopify's id of a data request.
    pub request_id: Option<i64>,
}

/// The inbox subject of a compliance request: its customer (or the whole shop).
pub fn compliance_subject(request: &Compliance) -> String {
    match (request.customer_id, &request.email) {
        (Some(id), _) => format!("customer:{}/{id}", request.shop_domain),
        (None, Some(email)) => format!("customer:{}/{}", request.shop_domain, email.to_lowercase()),
        (None, None) => format!("shop:{}", request.shop_domain),
    }
}

/// Reads a compliance webhook's body.
pub fn compliance(body: &[u8]) -> Result<Compliance, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let shop_domain = v["shop_domain"].as_str().filter(|s| !s.is_empty()).ok_or("the body has no `shop_domain`")?;
    let ids = |k: &str| v[k].as_array().map(|a| a.iter().filter_map(Value::as_i64).collect::<Vec<_>>());
    let text = |p: &str| v.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(Compliance {
        shop_domain: shop_domain.to_owned(),
        customer_id: v.pointer("/customer/id").and_then(Value::as_i64),
        email: text("/customer/email"),
        phone: text("/customer/phone"),
        orders: ids("orders_to_redact").or_else(|| ids("orders_requested")).unwrap_or_default(),
        request_id: v.pointer("/data_request/id").and_then(Value::as_i64),
    })
}

/// The workflow the first matching route names, given the order and its products' types (only
/// asked for when a route needs them), or `None` when none matches.
pub fn route<'a>(routes: &'a [ShopifyRoute], order: &ShopOrder, product_types: &[String]) -> Option<&'a str> {
    routes.iter().find(|r| matches(r, order, product_types)).map(|r| r.workflow.as_str())
}

fn matches(route: &ShopifyRoute, order: &ShopOrder, product_types: &[String]) -> bool {
    if let Some(tag) = &route.tag {
        return order.tags.iter().any(|t| t.eq_ignore_ascii_case(tag));
    }
    if let Some(prefix) = &route.sku_prefix {
        return order.lines.iter().any(|l| l.sku.as_deref().is_some_and(|s| s.starts_with(prefix.as_str())));
    }
    if let Some(kind) = &route.product_type {
        return product_types.iter().any(|t| t.eq_ignore_ascii_case(kind));
    }
    false
}

/// Whether some route needs the products' types.
pub fn needs_product_types(routes: &[ShopifyRoute]) -> bool {
    routes.iter().any(|r| r.product_type.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_base64_hmacs_of_the_raw_body_under_any_current_secret() {
        let body = br#"{"id":820982911946154508}"#;
        let header = sign("old-secret", body);
        assert!(verify(Some(&header), body, &["new-secret", "old-secret"]));
        assert!(!verify(Some(&header), br#"{"id":820982911946154509}"#, &["old-secret"]));
        assert!(!verify(Some(&header), body, &["another"]));
        assert!(!verify(None, body, &["old-secret"]));
        assert!(!verify(Some(""), body, &["old-secret"]));
    }

    #[test]
    fn routes_pick_the_first_match_and_fall_through_to_none() {
        let order = order(
            br#"{"id":1,"tags":"Rush, wedding","line_items":[{"title":"Ring","quantity":1,"sku":"JW-RING-7","product_id":9}]}"#,
        )
        .expect("order");
        let route = |tag: Option<&str>, sku: Option<&str>, kind: Option<&str>, wf: &str| ShopifyRoute {
            tag: tag.map(str::to_owned),
            sku_prefix: sku.map(str::to_owned),
            product_type: kind.map(str::to_owned),
            workflow: wf.to_owned(),
        };
        let routes = [route(None, None, Some("Stone"), "stone"), route(None, Some("JW-"), None, "jewelry")];
        assert_eq!(route_of(&routes, &order, &[]), Some("jewelry"));
        assert_eq!(route_of(&routes, &order, &["stone".to_owned()]), Some("stone"));
        assert_eq!(route_of(&[route(Some("WEDDING"), None, None, "print")], &order, &[]), Some("print"));
        assert_eq!(route_of(&[route(Some("gift"), None, None, "print")], &order, &[]), None);
    }

    fn route_of<'a>(routes: &'a [ShopifyRoute], order: &ShopOrder, types: &[String]) -> Option<&'a str> {
        route(routes, order, types)
    }
}
