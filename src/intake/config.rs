//! The `[intake]` settings: which senders may deliver orders to kiln, and how kiln reaches
//! their APIs. Each part is off unless present.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// Orders arriving by themselves.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// Apply recorded deliveries inside `kiln serve` (when false, deliveries are recorded and
    /// wait for a node that applies them).
    pub apply: bool,
    /// How long a delivery being applied is reserved for its applier; after that (the node
    /// died) another applier takes it. Longer than the slowest apply (Stripe's API and up to
    /// ten photo downloads, 15 s each).
    #[serde(deserialize_with = "duration")]
    pub lease: std::time::Duration,
    /// Stripe webhooks (`POST /hooks/stripe`); off when absent.
    pub stripe: Option<StripeConfig>,
    /// The workshop system's webhooks (`POST /hooks/workshop`); off when absent.
    pub workshop: Option<WorkshopConfig>,
    /// Shopify webhooks (`POST /hooks/shopify`) and the stage write-back; off when absent.
    pub shopify: Option<ShopifyConfig>,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self { apply: true, lease: std::time::Duration::from_secs(300), stripe: None, workshop: None, shopify: None }
    }
}

/// The workshop system: Standard Webhooks secrets it signs with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkshopConfig {
    /// Every `whsec_<base64>` secret currently valid (several while one is rolled).
    pub secrets: Vec<SecretString>,
}

impl WorkshopConfig {
    /// The parsed secrets (validated at start-up, so none is skipped in practice).
    pub fn keys(&self) -> Vec<crate::standard_webhooks::Secret> {
        self.secrets.iter().filter_map(|s| crate::standard_webhooks::Secret::parse(s.expose_secret()).ok()).collect()
    }
}

/// Stripe: webhook signing secrets and, optionally, an API key to read line items.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StripeConfig {
    /// Every `whsec_…` signing secret currently valid (several while one is rolled).
    pub webhook_secrets: Vec<SecretString>,
    /// Secret API key (`sk_…` or a restricted `rk_…`); without it, orders created from
    /// sessions say their items are unknown.
    pub api_key: Option<SecretString>,
    /// Stripe's API, or a compatible server in tests.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// The pinned `Stripe-Version` of API calls.
    #[serde(default = "default_api_version")]
    pub api_version: String,
    /// Workflow of orders created from sessions without `metadata.kiln_workflow`.
    pub default_workflow: String,
    /// Where Stripe sends the customer after paying a Checkout kiln started; the order's
    /// tracking page when absent.
    #[serde(default)]
    pub success_url: Option<String>,
    /// Where Stripe sends the customer who leaves such a Checkout; the tracking page when
    /// absent.
    #[serde(default)]
    pub cancel_url: Option<String>,
}

/// Shopify: the shop, its app's webhook secrets, and Admin API access.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShopifyConfig {
    /// The shop, e.g. `marble-works.myshopify.com` (webhooks from other shops are ignored).
    pub shop_domain: String,
    /// The app's client secrets (webhooks are signed with them); old and new while rotating.
    pub webhook_secrets: Vec<SecretString>,
    /// Admin API access token (`shpat_…`): product types for routing, the stage write-back,
    /// reconciliation.
    #[serde(default)]
    pub access_token: Option<SecretString>,
    /// The pinned Admin API version, e.g. `2025-01`.
    #[serde(default = "default_shopify_version")]
    pub api_version: String,
    /// The Admin API's origin; `https://{shop_domain}` when absent (a compatible server in tests).
    #[serde(default)]
    pub admin_base: Option<String>,
    /// Where the stage is written on the Shopify order; no write-back when absent.
    #[serde(default)]
    pub metafield: Option<MetafieldConfig>,
    /// Workflow of orders no route picks.
    pub default_workflow: String,
    /// Routing rules, first match wins.
    #[serde(default)]
    pub routes: Vec<ShopifyRoute>,
}

impl ShopifyConfig {
    /// The Admin API's origin, without a trailing slash.
    pub fn admin_base(&self) -> String {
        match &self.admin_base {
            Some(base) => base.trim_end_matches('/').to_owned(),
            None => format!("https://{}", self.shop_domain),
        }
    }
}

/// The order metafield the stage is written to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetafieldConfig {
    /// e.g. `kiln`.
    pub namespace: String,
    /// e.g. `stage`.
    pub key: String,
}

/// One routing rule: an order matching its one condition goes to `workflow`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ShopifyRoute {
    /// An order tag (case-insensitive).
    #[serde(default)]
    pub tag: Option<String>,
    /// The start of a line item's SKU.
    #[serde(default)]
    pub sku_prefix: Option<String>,
    /// A line item's product type (read through the Admin API, cached).
    #[serde(default)]
    pub product_type: Option<String>,
    /// The workflow.
    pub workflow: String,
}

fn default_shopify_version() -> String {
    SHOPIFY_API_VERSION.to_owned()
}

/// The Admin API version kiln's requests are written against.
pub const SHOPIFY_API_VERSION: &str = "2025-01";

fn default_api_base() -> String {
    "https://api.stripe.com".to_owned()
}

/// The API version kiln's requests are written against.
pub const STRIPE_API_VERSION: &str = "2024-06-20";

fn default_api_version() -> String {
    STRIPE_API_VERSION.to_owned()
}

fn duration<'de, D: serde::Deserializer<'de>>(de: D) -> Result<std::time::Duration, D::Error> {
    let text = String::deserialize(de)?;
    humantime::parse_duration(&text).map_err(serde::de::Error::custom)
}

impl IntakeConfig {
    /// Checks the settings together; the error names the setting.
    pub fn validate(&self, workflows: &[&str]) -> Result<(), (&'static str, String)> {
        if self.lease < std::time::Duration::from_secs(1) {
            return Err(("intake.lease", "must be at least 1s".to_owned()));
        }
        if let Some(stripe) = &self.stripe {
            if stripe.webhook_secrets.is_empty() {
                return Err(("intake.stripe.webhook_secrets", "needs at least one `whsec_…` secret".to_owned()));
            }
            if let Some(bad) = stripe.webhook_secrets.iter().find(|s| !s.expose_secret().starts_with("whsec_")) {
                let shown: String = bad.expose_secret().chars().take(6).collect();
                return Err(("intake.stripe.webhook_secrets", format!("`{shown}…` is not a `whsec_…` signing secret")));
            }
            if !(stripe.api_base.starts_with("https://") || stripe.api_base.starts_with("http://")) {
                return Err((
                    "intake.stripe.api_base",
                    format!("`{}` must start with https:// or http://", stripe.api_base),
                ));
            }
            for (name, url) in [("success_url", &stripe.success_url), ("cancel_url", &stripe.cancel_url)] {
                if let Some(url) = url
                    && url::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "https" | "http"))
                {
                    let field =
                        if name == "success_url" { "intake.stripe.success_url" } else { "intake.stripe.cancel_url" };
                    return Err((field, format!("`{url}` is not an http(s) URL")));
                }
            }
            if !workflows.is_empty() && !workflows.contains(&stripe.default_workflow.as_str()) {
                return Err((
                    "intake.stripe.default_workflow",
                    format!("no workflow `{}` (known: {})", stripe.default_workflow, workflows.join(", ")),
                ));
            }
        }
        if let Some(shopify) = &self.shopify {
            validate_shopify(shopify, workflows)?;
        }
        if let Some(workshop) = &self.workshop {
            if workshop.secrets.is_empty() {
                return Err(("intake.workshop.secrets", "needs at least one `whsec_…` secret".to_owned()));
            }
            for secret in &workshop.secrets {
                if let Err(e) = crate::standard_webhooks::Secret::parse(secret.expose_secret()) {
                    return Err(("intake.workshop.secrets", e));
                }
            }
        }
        Ok(())
    }
}

fn validate_shopify(shopify: &ShopifyConfig, workflows: &[&str]) -> Result<(), (&'static str, String)> {
    let domain = &shopify.shop_domain;
    if domain.is_empty() || !domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return Err((
            "intake.shopify.shop_domain",
            format!("`{domain}` is not a shop domain such as `shop.myshopify.com`"),
        ));
    }
    if shopify.webhook_secrets.is_empty() || shopify.webhook_secrets.iter().any(|s| s.expose_secret().is_empty()) {
        return Err(("intake.shopify.webhook_secrets", "needs at least one non-empty secret".to_owned()));
    }
    if let Some(base) = &shopify.admin_base
        && !(base.starts_with("https://") || base.starts_with("http://"))
    {
        return Err(("intake.shopify.admin_base", format!("`{base}` must start with https:// or http://")));
    }
    if shopify.metafield.is_some() && shopify.access_token.is_none() {
        return Err(("intake.shopify.metafield", "the stage write-back needs an access_token".to_owned()));
    }
    let known = |w: &str| workflows.is_empty() || workflows.contains(&w);
    if !known(&shopify.default_workflow) {
        return Err((
            "intake.shopify.default_workflow",
            format!("no workflow `{}` (known: {})", shopify.default_workflow, workflows.join(", ")),
        ));
    }
    for (i, route) in shopify.routes.iter().enumerate() {
        let conditions = [&route.tag, &route.sku_prefix, &route.product_type].iter().filter(|c| c.is_some()).count();
        if conditions != 1 {
            return Err((
                "intake.shopify.routes",
                format!("route {}: give exactly one of tag, sku_prefix, product_type", i + 1),
            ));
        }
        if route.product_type.is_some() && shopify.access_token.is_none() {
            return Err(("intake.shopify.routes", format!("route {}: product_type needs an access_token", i + 1)));
        }
        if !known(&route.workflow) {
            return Err(("intake.shopify.routes", format!("route {}: no workflow `{}`", i + 1, route.workflow)));
        }
    }
    Ok(())
}
