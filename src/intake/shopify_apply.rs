//! Applying Shopify's order webhooks: `orders/create` and `orders/paid` make the order (once
//! per shop and Shopify order, whichever arrives first), `orders/updated` updates the contact
//! details, `orders/cancelled` cancels. Events about an order kiln does not have yet are
//! parked and applied when it arrives.

use std::time::{Duration, Instant};

use serde_json::json;

use super::config::ShopifyConfig;
use super::shopify::{self, ShopOrder};
use super::{Applier, MAX_ATTEMPTS, refusal_text, shopify_api};
use crate::domain::change::{Change, Edits};
use crate::domain::model::{Actor, Customer, ExternalIds, LineItem};
use crate::domain::order::{EmailAddress, Language, PhoneNumber, Priority, Source};
use crate::domain::transition::Action;
use crate::service::{Linked, NewOrder, ServiceError};
use crate::store::inbox::{self, Entry, Outcome};
use crate::store::{now_ms, orders};

/// How long a product's type is trusted before it is read again.
const PRODUCT_TYPE_TTL: Duration = Duration::from_secs(3600);

/// The business key of a Shopify order: its shop and id (the inbox subject and the link).
pub fn order_key(shop: &str, order_id: i64) -> String {
    format!("{shop}/{order_id}")
}

impl Applier {
    /// Applies a Shopify delivery.
    pub(super) async fn apply_shopify(&self, config: &ShopifyConfig, entry: &Entry) -> Outcome {
        let topic = entry.topic.as_str();
        if shopify::COMPLIANCE_TOPICS.contains(&topic) {
            return self.apply_compliance(config, entry).await;
        }
        if !shopify::ORDER_TOPICS.contains(&topic) {
            return Outcome::Ignored(format!("kiln does not act on `{topic}` webhooks"));
        }
        let order = match shopify::order(entry.payload.as_bytes()) {
            Ok(order) => order,
            Err(why) => return Outcome::Ignored(format!("not an order kiln can read: {why}")),
        };
        let Some(key) = entry.subject.clone() else {
            return Outcome::Ignored("the delivery names no order".to_owned());
        };
        if !key.starts_with(&format!("{}/", config.shop_domain)) {
            return Outcome::Ignored(format!("the order `{key}` is from another shop than {}", config.shop_domain));
        }
        let linked = match inbox::linked_order(self.service.db(), "shopify", &key).await {
            Ok(linked) => linked,
            Err(e) => return self.retry(entry, format!("database: {e}")),
        };
        match (topic, linked) {
            ("orders/create" | "orders/paid", Some(id)) => {
                Outcome::Ignored(format!("order {} was already made for Shopify order {key}", self.reference(id).await))
            }
            ("orders/create" | "orders/paid", None) => {
                self.create_shopify_order(config, entry.attempts, &key, &order).await
            }
            (_, None) => {
                Outcome::Parked(format!("there is no order for Shopify order {key} yet; applied when it arrives"))
            }
            ("orders/cancelled", Some(id)) => self.cancel_shopify_order(entry, id).await,
            (_, Some(id)) => self.update_contact(entry, id, &order).await,
        }
    }

    /// Creates the order (once, however many deliveries race) in the routed workflow.
    /// `attempts` so far decide whether an unreachable Admin API is worth a retry.
    pub(super) async fn create_shopify_order(
        &self,
        config: &ShopifyConfig,
        attempts: i64,
        key: &str,
        order: &ShopOrder,
    ) -> Outcome {
        let workflow = match self.shopify_workflow(config, order, attempts).await {
            Ok(workflow) => workflow,
            Err(outcome) => return outcome,
        };
        let new = shopify_new_order(&self.service.config().shop.language, workflow, order);
        let actor = Actor { name: "shopify".to_owned(), source: Source::Webhook };
        match self.service.create_linked_order(new, &actor, "shopify", key).await {
            Ok(Linked::New(created)) => {
                // `orders/updated` and `orders/cancelled` parked until the order existed.
                match inbox::wake_parked_any(self.service.db(), "shopify", &[key.to_owned()], now_ms()).await {
                    Ok(0) => {}
                    Ok(_) => self.service.inbox_signal().notify_one(),
                    Err(e) => tracing::warn!(error = %e, "cannot wake parked Shopify events"),
                }
                Outcome::Applied(Some(created.id))
            }
            Ok(Linked::Existing(id)) => {
                Outcome::Ignored(format!("order {} was already made for Shopify order {key}", self.reference(id).await))
            }
            Err(ServiceError::Invalid { field, message }) => {
                Outcome::Failed(format!("the Shopify order cannot become an order: {field}: {message}"))
            }
            Err(e) => self.retry_after(attempts, e.chain()),
        }
    }

    /// The workflow the routes pick (reading product types through the Admin API when a
    /// route needs them), or the default.
    async fn shopify_workflow(
        &self,
        config: &ShopifyConfig,
        order: &ShopOrder,
        attempts: i64,
    ) -> Result<String, Outcome> {
        // Routes before the first product-type route need no API call.
        let cheap: Vec<_> = config.routes.iter().take_while(|r| r.product_type.is_none()).cloned().collect();
        if let Some(wf) = shopify::route(&cheap, order, &[]) {
            return Ok(wf.to_owned());
        }
        let types = if shopify::needs_product_types(&config.routes) {
            match self.product_types(config, order).await {
                Ok(types) => types,
                Err(shopify_api::Error::Transient(e)) if attempts < MAX_ATTEMPTS => {
                    return Err(self.retry_after(attempts, e));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "product types unknown; routing without them");
                    Vec::new()
                }
            }
        } else {
            Vec::new()
        };
        Ok(shopify::route(&config.routes, order, &types).unwrap_or(&config.default_workflow).to_owned())
    }

    /// The product types of the order's products, from the cache or the Admin API.
    async fn product_types(
        &self,
        config: &ShopifyConfig,
        order: &ShopOrder,
    ) -> Result<Vec<String>, shopify_api::Error> {
        let mut ids: Vec<i64> = order.lines.iter().filter_map(|l| l.product_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut types = Vec::new();
        let mut missing = Vec::new();
        {
            let cache = self.product_types.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for id in &ids {
                match cache.get(id) {
                    Some((kind, at)) if at.elapsed() < PRODUCT_TYPE_TTL => types.push(kind.clone()),
                    _ => missing.push(*id),
                }
            }
        }
        if missing.is_empty() {
            return Ok(types);
        }
        let fetched = shopify_api::product_types(&self.http, config, &missing).await?;
        let mut cache = self.product_types.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (id, kind) in fetched {
            cache.insert(id, (kind.clone(), Instant::now()));
            types.push(kind);
        }
        Ok(types)
    }

    async fn cancel_shopify_order(&self, entry: &Entry, id: i64) -> Outcome {
        let reference = self.reference(id).await;
        let change = Change::Act {
            action: Action::Cancel,
            expected_stage: None,
            note: None,
            internal_note: Some("Cancelled in Shopify.".to_owned()),
            photo_ids: Vec::new(),
        };
        let actor = Actor { name: "shopify".to_owned(), source: Source::Webhook };
        match self.service.change(&reference, &change, &actor).await {
            Ok(_) => Outcome::Applied(Some(id)),
            Err(ServiceError::Refused(refusal)) => {
                Outcome::Ignored(format!("order {reference} stays as it is: {}", refusal_text(&refusal)))
            }
            Err(e) => self.retry(entry, e.chain()),
        }
    }

    /// Copies changed contact details, unless a newer update was applied already.
    async fn update_contact(&self, entry: &Entry, id: i64, order: &ShopOrder) -> Outcome {
        let db = self.service.db();
        if let Some(at) = entry.occurred_at {
            match inbox::latest_applied(db, "shopify", id).await {
                Ok(Some(latest)) if latest > at => {
                    return Outcome::Ignored("older than an update already applied".to_owned());
                }
                Ok(_) => {}
                Err(e) => return self.retry(entry, format!("database: {e}")),
            }
        }
        let current = match orders::by_id(db, id).await {
            Ok(Some(current)) => current,
            Ok(None) => return Outcome::Failed(format!("order #{id} is gone")),
            Err(e) => return self.retry(entry, format!("database: {e}")),
        };
        let c = &current.customer;
        let mut edits = Edits::default();
        if let Some(name) = order.customer_name.as_ref().filter(|n| **n != c.name) {
            edits.name = Some(name.chars().take(200).collect());
        }
        let email = order.email.as_deref().and_then(|e| EmailAddress::parse(e).ok());
        if email.is_some() && email != c.email {
            edits.email = Some(email);
        }
        let phone = order.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok());
        if phone.is_some() && phone != c.phone {
            edits.phone = Some(phone);
        }
        if edits == Edits::default() {
            // Recorded as applied so that an older update arriving later is told apart.
            return Outcome::Applied(Some(id));
        }
        let actor = Actor { name: "shopify".to_owned(), source: Source::Webhook };
        match self.service.change(current.reference.as_str(), &Change::Edit(edits), &actor).await {
            Ok(_) => Outcome::Applied(Some(id)),
            Err(ServiceError::Refused(refusal)) => {
                Outcome::Ignored(format!("order {} stays as it is: {}", current.reference, refusal_text(&refusal)))
            }
            Err(e) => self.retry(entry, e.chain()),
        }
    }
}

/// The kiln order for a Shopify order.
pub fn shopify_new_order(shop_language: &str, workflow: String, order: &ShopOrder) -> NewOrder {
    let email = order.email.as_deref().and_then(|e| EmailAddress::parse(e).ok());
    let phone = order.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok());
    let language = order
        .locale
        .as_deref()
        .and_then(|l| Language::parse(l).ok())
        .or_else(|| Language::parse(shop_language).ok())
        .unwrap_or_else(Language::english);
    let name = order
        .customer_name
        .clone()
        .or_else(|| order.email.clone())
        .unwrap_or_else(|| "Shopify customer".to_owned())
        .chars()
        .take(200)
        .collect();
    let mut notes = format!("From Shopify order {} ({}).", order.name.as_deref().unwrap_or("?"), order.id);
    if let Some((total, currency)) = &order.total {
        notes.push_str(&format!(" Total: {total} {currency}."));
    }
    if let Some(note) = &order.note {
        // The customer's note to the shop: shop-only, like the rest of the notes.
        notes.push_str(&format!(" Customer's note: {note}"));
    }
    let notes: String = notes.chars().take(10_000).collect();
    let mut items: Vec<LineItem> = order
        .lines
        .iter()
        .map(|l| LineItem {
            description: l.title.chars().take(500).collect(),
            variant: l.variant.as_ref().map(|v| v.chars().take(200).collect()),
            quantity: l.quantity,
            material: None,
            metadata: json!({ "shopify_line_item": l.id, "sku": l.sku, "product_id": l.product_id }),
        })
        .collect();
    if items.is_empty() {
        items.push(LineItem {
            description: "Items unknown (the Shopify order listed none)".to_owned(),
            variant: None,
            quantity: 1,
            material: None,
            metadata: json!({ "unknown": true }),
        });
    }
    NewOrder {
        reference: None,
        workflow,
        stage: None,
        priority: Priority::Standard,
        customer: Customer {
            name,
            email: email.clone(),
            phone: phone.clone(),
            telegram_chat_id: None,
            channels: [
                (email.is_some(), crate::domain::order::Channel::Email),
                (phone.is_some(), crate::domain::order::Channel::Sms),
            ]
            .into_iter()
            .filter_map(|(known, ch)| known.then_some(ch))
            .collect(),
            language,
            timezone: None,
        },
        items,
        due_date: None,
        notes,
        customer_note: String::new(),
        external_ids: ExternalIds { stripe: None, shopify: Some(order.id.to_string()) },
        metadata: json!({ "shopify": {
            "name": order.name,
            "tags": order.tags,
            "customer_id": order.customer_id,
        }}),
        created_at: None,
    }
}
