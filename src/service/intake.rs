//! The inbox as operators see it: what arrived, what became of it, and replaying it.

use super::{Service, ServiceError};
use crate::store::inbox::{self, Entry, Filter};
use crate::store::{now_ms, orders};

impl Service {
    /// Records a verified webhook delivery (once per sender event id) and wakes the applier;
    /// `false` if it was recorded before.
    pub async fn record_delivery(&self, delivery: &inbox::NewDelivery<'_>) -> Result<bool, ServiceError> {
        let recorded = inbox::record(self.db(), delivery, now_ms()).await?;
        if recorded {
            self.inbox_signal().notify_one();
        }
        Ok(recorded)
    }

    /// Recorded webhook deliveries, newest first, at most `limit`, each with the reference of
    /// the order it created or changed.
    pub async fn inbox(&self, filter: &Filter, limit: i64) -> Result<Vec<(Entry, Option<String>)>, ServiceError> {
        let entries = inbox::list(self.db(), filter, limit).await?;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries {
            let reference = match entry.order_id {
                Some(id) => orders::by_id(self.db(), id).await?.map(|o| o.reference.to_string()),
                None => None,
            };
            out.push((entry, reference));
        }
        Ok(out)
    }

    /// Queues delivery `id` to be applied again (applying twice changes nothing that was
    /// already done); `false` if there is no such delivery or it is being applied now.
    pub async fn replay_delivery(&self, id: i64) -> Result<bool, ServiceError> {
        let queued = inbox::replay(self.db(), id, now_ms()).await?;
        if queued {
            self.inbox_signal().notify_one();
        }
        Ok(queued)
    }
}
