//! The one path every change to an existing order takes.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::{Service, ServiceError};
use crate::domain::change::{Change, plan};
use crate::domain::model::{Actor, Event, NewEvent, Order};
use crate::store::changes::{self, PlannedWrite};
use crate::store::{self, orders};

/// The result of a committed change.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The order as committed.
    pub order: Order,
    /// The events appended, in order.
    pub events: Vec<Event>,
}

impl Service {
    /// Applies `change` to the order `reference`: validates it against the workflow and, in
    /// one transaction, writes the order (if its version is unchanged since it was read),
    /// appends the audit events and enqueues the jobs they cause.
    ///
    /// The first attempt plans from the order as this node last wrote or read it, outside the
    /// write transaction. If another writer changed the order meanwhile, the version guard
    /// refuses the write and the change is planned again from a read inside the write
    /// transaction with the row locked, so it cannot lose again — and a second identical
    /// move is then refused by the workflow rather than applied twice.
    pub async fn change(&self, reference: &str, change: &Change, actor: &Actor) -> Result<Applied, ServiceError> {
        self.change_at(reference, change, actor, Utc::now()).await
    }

    /// [`Service::change`] as of a given time, for imports and demo data with a history.
    pub async fn change_at(
        &self,
        reference: &str,
        change: &Change,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Applied, ServiceError> {
        let (this, reference, change, actor) = (self.clone(), reference.to_owned(), change.clone(), actor.clone());
        // Run to completion even if the caller goes away (an HTTP client disconnecting drops
        // its handler): a write must never stop half-way, and one that commits must also
        // update the caches it affects.
        tokio::spawn(async move { this.change_to_completion(&reference, &change, &actor, at).await })
            .await
            .map_err(|e| ServiceError::internal("change task failed", e))?
    }

    async fn change_to_completion(
        &self,
        reference: &str,
        change: &Change,
        actor: &Actor,
        at: DateTime<Utc>,
    ) -> Result<Applied, ServiceError> {
        let now = store::from_ms(at.timestamp_millis());
        if let Some(applied) = self.attempt(reference, change, actor, now, false).await? {
            return Ok(applied);
        }
        self.attempt(reference, change, actor, now, true).await?.ok_or(ServiceError::Busy)
    }

    /// One try; `None` when the order changed between the read and the write.
    async fn attempt(
        &self,
        reference: &str,
        change: &Change,
        actor: &Actor,
        now: DateTime<Utc>,
        locked: bool,
    ) -> Result<Option<Applied>, ServiceError> {
        let not_found = || ServiceError::OrderNotFound(reference.to_owned());
        let (order, tx) = if locked {
            let mut tx = self.db().begin().await?;
            let order = orders::by_reference_for_update(&mut tx, reference).await?.ok_or_else(not_found)?;
            (Arc::new(order), Some(tx))
        } else {
            (self.latest_order(reference).await?.ok_or_else(not_found)?, None)
        };
        let wf = self.workflows().get(&order.workflow).ok_or_else(|| {
            ServiceError::broken(format!("order {reference} uses workflow `{}`, which is not loaded", order.workflow))
        })?;
        let plan = plan(wf, &order, change, actor, now).map_err(ServiceError::Refused)?;

        let write = Arc::new(PlannedWrite {
            order: plan.order,
            events: plan.events,
            jobs: plan.jobs,
            at_ms: now.timestamp_millis(),
        });
        let Some(ids) = changes::apply(self.db(), tx, write.clone()).await? else {
            return Ok(None);
        };
        let mut committed = write.order.clone();
        committed.version += 1;
        self.committed(&committed);
        let events = write.events.iter().cloned().zip(ids).map(|(e, id)| recorded(e, id, order.id, now)).collect();
        Ok(Some(Applied { order: committed, events }))
    }
}

/// The stored form of an event just appended.
pub(super) fn recorded(e: NewEvent, id: i64, order_id: i64, at: DateTime<Utc>) -> Event {
    Event {
        id,
        order_id,
        kind: e.kind,
        from_stage: e.from_stage,
        to_stage: e.to_stage,
        actor: e.actor,
        source: e.source,
        note: e.note,
        internal_note: e.internal_note,
        visibility: e.visibility,
        photo_ids: e.photo_ids,
        data: e.data,
        created_at: at,
    }
}
