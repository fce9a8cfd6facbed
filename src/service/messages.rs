//! The delivery log and what operators and customers do to it: list an order's messages,
//! queue a dead one again, opt out of messages.

use super::{Service, ServiceError};
use crate::store::deliveries::{self, Attempt, Message};
use crate::store::now_ms;

impl Service {
    /// The messages about order `reference`, oldest first, with every attempt.
    pub async fn messages(&self, reference: &str) -> Result<(Vec<Message>, Vec<Attempt>), ServiceError> {
        let id = self.order_id(reference).await?.ok_or_else(|| ServiceError::OrderNotFound(reference.to_owned()))?;
        Ok(deliveries::for_order(self.db(), id).await?)
    }

    /// Queues dead message `id` again for a fresh round of attempts; `false` if there is no
    /// dead message with this id.
    pub async fn retry_message(&self, id: i64) -> Result<bool, ServiceError> {
        let queued = deliveries::retry(self.db(), id, now_ms()).await?.is_some();
        if queued {
            self.outbox_signal().notify_one();
        }
        Ok(queued)
    }

    /// Stops messages for each of `scopes` (`order:<id>` or `address:<email or phone>`);
    /// repeating it is harmless.
    pub async fn opt_out(&self, scopes: &[String]) -> Result<(), ServiceError> {
        let now = now_ms();
        for scope in scopes {
            deliveries::opt_out(self.db(), scope, now).await?;
        }
        Ok(())
    }
}
