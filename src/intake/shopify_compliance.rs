//! Shopify's mandatory compliance webhooks: `customers/redact` erases a customer's personal
//! data from kiln (orders, messages, photo captions) and keeps the audit trail with the person
//! replaced by a pseudonym; `customers/data_request` saves an export an operator downloads
//! (`GET /api/v1/data-exports/{id}`); `shop/redact` erases every Shopify customer of the shop.

use serde_json::{Value, json};

use super::Applier;
use super::config::ShopifyConfig;
use super::shopify::{self, Compliance};
use super::shopify_apply::order_key;
use crate::crypto::sha256_hex;
use crate::domain::model::{Actor, NewEvent};
use crate::domain::order::Source;
use crate::domain::transition::EventKind;
use crate::service::Signal;
use crate::store::inbox::{Entry, Outcome};
use crate::store::{self, changes, events, now_ms, orders, redaction};

impl Applier {
    /// Applies a compliance delivery.
    pub(super) async fn apply_compliance(&self, config: &ShopifyConfig, entry: &Entry) -> Outcome {
        let request = match shopify::compliance(entry.payload.as_bytes()) {
            Ok(request) => request,
            Err(why) => return Outcome::Ignored(format!("not a compliance request kiln can read: {why}")),
        };
        if request.shop_domain != config.shop_domain {
            return Outcome::Ignored(format!("about another shop than {}", config.shop_domain));
        }
        let found = match self.customer_orders(&request, entry.topic == "shop/redact").await {
            Ok(found) => found,
            Err(e) => return self.retry(entry, format!("database: {e}")),
        };
        tracing::info!(topic = %entry.topic, orders = found.len(), "Shopify compliance request");
        if entry.topic == "customers/data_request" {
            return match self.export_customer(&request, &found).await {
                Ok(id) => Outcome::AppliedWith(
                    found.first().copied(),
                    format!("export of {} orders saved: GET /api/v1/data-exports/{id}", found.len()),
                ),
                Err(e) => self.retry(entry, format!("database: {e}")),
            };
        }
        if !found.is_empty()
            && let Err(e) = self.redact_customer(&request, &found, &entry.topic).await
        {
            return self.retry(entry, format!("database: {e}"));
        }
        // Then the requests about the person (this one included: its body names them) and any
        // export made for them; last, so that a retry still has the request to read.
        let exports: Vec<String> =
            [request.email.clone(), request.customer_id.map(|id| id.to_string())].into_iter().flatten().collect();
        let subject = shopify::compliance_subject(&request);
        if let Err(e) = redaction::forget_requests(self.service.db(), "shopify", &subject, &exports).await {
            return self.retry(entry, format!("database: {e}"));
        }
        if found.is_empty() {
            return Outcome::Ignored("kiln holds no order of this customer".to_owned());
        }
        Outcome::AppliedWith(found.first().copied(), format!("personal data erased from {} orders", found.len()))
    }

    /// The orders a request is about: those it names, and the shop's orders of the customer's
    /// email (every Shopify order of the shop for `shop/redact`).
    async fn customer_orders(&self, request: &Compliance, whole_shop: bool) -> Result<Vec<i64>, sqlx::Error> {
        let db = self.service.db();
        let mut found = Vec::new();
        if whole_shop {
            found = redaction::orders_linked_like(db, "shopify", &format!("{}/", request.shop_domain)).await?;
        }
        for id in &request.orders {
            if let Some(order) =
                store::inbox::linked_order(db, "shopify", &order_key(&request.shop_domain, *id)).await?
            {
                found.push(order);
            }
        }
        if let Some(email) = &request.email {
            for order in redaction::linked_orders_by_email(db, "shopify", email).await? {
                found.push(order);
            }
        }
        found.sort_unstable();
        found.dedup();
        Ok(found)
    }

    /// Erases the personal data of `found`, each in one transaction with an audit event.
    async fn redact_customer(&self, request: &Compliance, found: &[i64], topic: &str) -> Result<(), sqlx::Error> {
        let pseudonym = pseudonym(request);
        let reason = format!("Shopify {topic}");
        let actor = Actor { name: "shopify".to_owned(), source: Source::Webhook };
        for order_id in found {
            let now = now_ms();
            let mut tx = self.service.db().begin().await?;
            redaction::redact_order(&mut tx, *order_id, &pseudonym, &reason, now).await?;
            // The erasure itself is part of the trail (appended after the rewrite).
            let event = NewEvent {
                internal_note: Some(format!(
                    "Personal data erased at the shop's request ({reason}); the customer is now {pseudonym}."
                )),
                data: json!({ "redacted": true, "pseudonym": pseudonym }),
                ..NewEvent::new(EventKind::Noted, &actor)
            };
            changes::append(&mut tx, *order_id, &[event], &[], now).await?;
            tx.commit().await?;
            self.service.on_signal(Signal::Order(*order_id));
        }
        Ok(())
    }

    /// Saves everything kiln holds about the customer in `found` as one JSON export.
    async fn export_customer(&self, request: &Compliance, found: &[i64]) -> Result<i64, sqlx::Error> {
        let db = self.service.db();
        let mut out = Vec::new();
        for id in found {
            let Some(order) = orders::by_id(db, *id).await? else { continue };
            let items = orders::items(db, *id).await?;
            let log = events::for_order(db, *id, false).await?;
            out.push(json!({
                "reference": order.reference.to_string(),
                "customer": {
                    "name": order.customer.name,
                    "email": order.customer.email,
                    "phone": order.customer.phone,
                    "language": order.customer.language,
                },
                "created_at": order.created_at.to_rfc3339(),
                "stage": order.state.stage,
                "status": order.state.status,
                "items": items.iter().map(|i| json!({ "description": i.description, "variant": i.variant, "quantity": i.quantity })).collect::<Vec<_>>(),
                "events": log.iter().filter(|e| e.visibility == crate::domain::order::Visibility::Customer).map(|e| json!({
                    "kind": e.kind, "to_stage": e.to_stage, "note": e.note, "at": e.created_at.to_rfc3339(),
                })).collect::<Vec<_>>(),
            }));
        }
        let body = json!({
            "shop_domain": request.shop_domain,
            "customer": { "id": request.customer_id, "email": request.email, "phone": request.phone },
            "data_request": request.request_id,
            "orders": out,
        });
        let subject =
            request.email.clone().or_else(|| request.customer_id.map(|id| id.to_string())).unwrap_or_default();
        redaction::save_export(db, "shopify", &subject, &Value::to_string(&body), now_ms()).await
    }
}

/// A stable pseudonym for the customer: the same person gets the same one every time, and it
/// does not reveal who they are.
fn pseudonym(request: &Compliance) -> String {
    let who = match (request.customer_id, &request.email) {
        (Some(id), _) => format!("{}/customer/{id}", request.shop_domain),
        (None, Some(email)) => format!("{}/email/{}", request.shop_domain, email.to_lowercase()),
        (None, None) => format!("{}/shop", request.shop_domain),
    };
    format!("Customer {}", &sha256_hex(who.as_bytes())[..10])
}
