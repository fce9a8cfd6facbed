//! Tracking links: showing an order's link again, revoking and re-issuing it.

use serde_json::json;

use super::create::TRACKING_TOKEN_BYTES;
use super::{Service, ServiceError};
use crate::crypto::{random_token, token_hash};
use crate::domain::model::{Actor, NewEvent, Order};
use crate::domain::transition::EventKind;
use crate::store::{self, events, orders, tracking};

const CONTEXT: &str = "tracking";

impl Service {
    /// The public URL of a tracking token.
    pub fn tracking_url_for(&self, token: &str) -> String {
        self.config().public_url(&format!("t/{token}"))
    }

    /// The order's current tracking URL, or `None` if its link was revoked.
    pub async fn tracking_url(&self, order_id: i64) -> Result<Option<String>, ServiceError> {
        let Some(sealed) = tracking::active_sealed(self.db(), order_id).await? else {
            return Ok(None);
        };
        let token = self.inner.sealer.open(CONTEXT, &sealed).map_err(|e| {
            ServiceError::internal(format!("tracking link of order {order_id} (was the secret key changed?)"), e)
        })?;
        Ok(Some(self.tracking_url_for(&token)))
    }

    /// The order a tracking token opens, if the token is active.
    pub async fn order_for_token(&self, token: &str) -> Result<Option<Order>, ServiceError> {
        let Some(order_id) = tracking::order_for_hash(self.db(), &token_hash(token)).await? else {
            return Ok(None);
        };
        Ok(orders::by_id(self.db(), order_id).await?)
    }

    /// Revokes the order's link and issues a new one; returns the new URL.
    pub async fn reissue_tracking_link(&self, reference: &str, actor: &Actor) -> Result<String, ServiceError> {
        let token = random_token(TRACKING_TOKEN_BYTES);
        let sealed = self
            .inner
            .sealer
            .seal(CONTEXT, &token)
            .map_err(|e| ServiceError::internal("cannot seal a tracking token", e))?;
        self.link_change(reference, actor, EventKind::LinkReissued, Some((token_hash(&token), sealed))).await?;
        Ok(self.tracking_url_for(&token))
    }

    /// Revokes the order's link without a replacement.
    pub async fn revoke_tracking_link(&self, reference: &str, actor: &Actor) -> Result<(), ServiceError> {
        self.link_change(reference, actor, EventKind::LinkRevoked, None).await
    }

    async fn link_change(
        &self,
        reference: &str,
        actor: &Actor,
        kind: EventKind,
        new_link: Option<(String, String)>,
    ) -> Result<(), ServiceError> {
        let order = orders::by_reference(self.db(), reference)
            .await?
            .ok_or_else(|| ServiceError::OrderNotFound(reference.to_owned()))?;
        let now = store::now_ms();
        let mut tx = self.db().begin().await?;
        let had_link = tracking::revoke_active(&mut tx, order.id, now).await?;
        if let Some((hash, sealed)) = &new_link {
            tracking::insert(&mut tx, order.id, hash, sealed, now).await?;
        }
        let event = NewEvent { data: json!({ "previous_link_revoked": had_link }), ..NewEvent::new(kind, actor) };
        events::insert(&mut tx, order.id, &event, now).await?;
        tx.commit().await?;
        self.on_signal(super::Signal::Order(order.id));
        Ok(())
    }
}
