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
}

impl Default for IntakeConfig {
    fn default() -> Self {
        Self { apply: true, lease: std::time::Duration::from_secs(300), stripe: None, workshop: None }
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
}

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
            if !workflows.is_empty() && !workflows.contains(&stripe.default_workflow.as_str()) {
                return Err((
                    "intake.stripe.default_workflow",
                    format!("no workflow `{}` (known: {})", stripe.default_workflow, workflows.join(", ")),
                ));
            }
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
