//! `kiln reconcile stripe|shopify --since 3d`: lists the paid Checkout Sessions Stripe has
//! (or the orders Shopify has) and creates the orders a dropped webhook missed, through the
//! same path as the webhook. Running it twice creates nothing the second time.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::{Applier, MAX_ATTEMPTS, shopify, shopify_api, shopify_apply, stripe, stripe_api};
use crate::store::inbox::Outcome;

/// What a reconciliation found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Complete sessions Stripe listed.
    pub listed: usize,
    /// Of those, unpaid ones (left alone).
    pub unpaid: usize,
    /// Orders created now, by session id.
    pub created: Vec<String>,
    /// Paid sessions whose order already existed.
    pub present: usize,
    /// Sessions that could not be handled, and why.
    pub failed: Vec<(String, String)>,
}

impl Applier {
    /// Creates the orders of paid sessions since `since` that kiln does not have.
    pub async fn reconcile_stripe(&self, since: DateTime<Utc>) -> Result<Report, String> {
        let config = self.service.config().intake.stripe.as_ref().ok_or("[intake.stripe] is not configured")?;
        let key = config.api_key.as_ref().ok_or("[intake.stripe] needs an api_key to list sessions")?;
        let listed = stripe_api::complete_sessions(&self.http, config, key.expose_secret(), since.timestamp())
            .await
            .map_err(|e| match e {
                stripe_api::Error::Transient(e) | stripe_api::Error::Refused(e) => e,
            })?;
        let mut report = Report { listed: listed.len(), ..Report::default() };
        for object in &listed {
            let session = match stripe::session(object) {
                Ok(session) => session,
                Err(why) => {
                    let id = object["id"].as_str().unwrap_or("?").to_owned();
                    report.failed.push((id, why));
                    continue;
                }
            };
            if !stripe::is_paid(object) {
                report.unpaid += 1;
                continue;
            }
            // One attempt, like a webhook's last: an unreachable item list leaves the items
            // unknown rather than the order missing.
            match self.paid_session(config, &session, MAX_ATTEMPTS).await {
                Outcome::Applied(_) | Outcome::AppliedWith(..) => report.created.push(session.id),
                Outcome::Ignored(_) => report.present += 1,
                Outcome::Parked(why) | Outcome::Failed(why) | Outcome::Retry { error: why, .. } => {
                    report.failed.push((session.id, why));
                }
            }
        }
        Ok(report)
    }
}

impl Applier {
    /// Creates the orders Shopify has since `since` that kiln does not have (cancelled ones
    /// are left alone, as `unpaid` in the report).
    pub async fn reconcile_shopify(&self, since: DateTime<Utc>) -> Result<Report, String> {
        let config = self.service.config().intake.shopify.as_ref().ok_or("[intake.shopify] is not configured")?;
        if config.access_token.is_none() {
            return Err("[intake.shopify] needs an access_token to list orders".to_owned());
        }
        let from = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let listed = shopify_api::orders_since(&self.http, config, &from).await.map_err(|e| e.to_string())?;
        let mut report = Report { listed: listed.len(), ..Report::default() };
        for object in &listed {
            let order = match serde_json::to_vec(object).map_err(|e| e.to_string()).and_then(|b| shopify::order(&b)) {
                Ok(order) => order,
                Err(why) => {
                    report.failed.push((object["id"].to_string(), why));
                    continue;
                }
            };
            let key = shopify_apply::order_key(&config.shop_domain, order.id);
            if object["cancelled_at"].as_str().is_some() {
                report.unpaid += 1;
                continue;
            }
            match self.create_shopify_order(config, MAX_ATTEMPTS, &key, &order).await {
                Outcome::Applied(_) | Outcome::AppliedWith(..) => report.created.push(key),
                Outcome::Ignored(_) => report.present += 1,
                Outcome::Parked(why) | Outcome::Failed(why) | Outcome::Retry { error: why, .. } => {
                    report.failed.push((key, why));
                }
            }
        }
        Ok(report)
    }
}
