//! `kiln reconcile stripe --since 3d`: lists the paid Checkout Sessions Stripe has and
//! creates the orders a dropped webhook missed, through the same path as the webhook.
//! Running it twice creates nothing the second time.

use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;

use super::{Applier, MAX_ATTEMPTS, stripe, stripe_api};
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
                Outcome::Applied(_) => report.created.push(session.id),
                Outcome::Ignored(_) => report.present += 1,
                Outcome::Parked(why) | Outcome::Failed(why) | Outcome::Retry { error: why, .. } => {
                    report.failed.push((session.id, why));
                }
            }
        }
        Ok(report)
    }
}
