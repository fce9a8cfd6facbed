//! Creating many linked orders in one transaction, for imports: the same orders
//! [`Service::create_linked_order`] would create one by one, written with one statement per
//! table for the whole batch.

use super::create::{Draft, Linked, NewOrder};
use super::{Service, ServiceError};
use crate::domain::model::Actor;
use crate::domain::workflow::{Stage, Workflow};
use crate::store::inbox;
use crate::store::orders::{self, NewOrderWrite};

/// An order of a batch that passed its checks: its position in the batch, its workflow and
/// its starting stage.
type Checked<'w> = (usize, &'w Workflow, &'w Stage);

impl Service {
    /// Creates the orders standing for objects of `source`, each given with its object's
    /// `external_id`, in one transaction; an object that already stands for an order is left
    /// as it is (`Linked::Existing`). Returns what became of each order, in the order given:
    /// an order refused on its own (an unknown stage) is an `Err` in its place. If the batch
    /// cannot be written whole (one order's rows are refused: a reference taken, a
    /// constraint), it is rolled back and its orders created one at a time, so that only the
    /// bad one is refused.
    pub async fn create_linked_batch(
        &self,
        batch: Vec<(NewOrder, String)>,
        actor: &Actor,
        source: &str,
    ) -> Vec<Result<Linked, ServiceError>> {
        let mut results: Vec<Option<Result<Linked, ServiceError>>> = batch.iter().map(|_| None).collect();
        let mut checked: Vec<Checked> = Vec::with_capacity(batch.len());
        for (i, (new, _)) in batch.iter().enumerate() {
            match self.workflow_stage(new) {
                Ok((wf, stage)) => checked.push((i, wf, stage)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        match self.write_batch(&batch, &checked, actor, source).await {
            Ok(done) => {
                for (i, linked) in done {
                    results[i] = Some(Ok(linked));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e.chain(), orders = checked.len(), "a batch of new orders is written one at a time");
                for (i, ..) in checked {
                    let (new, external_id) = &batch[i];
                    results[i] = Some(self.create_linked_order(new.clone(), actor, source, external_id).await);
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(ServiceError::broken("an order of a batch was left out"))))
            .collect()
    }

    /// Writes the checked orders of `batch` in one transaction; on any error nothing is
    /// written (dropping the transaction rolls it back).
    async fn write_batch(
        &self,
        batch: &[(NewOrder, String)],
        checked: &[Checked<'_>],
        actor: &Actor,
        source: &str,
    ) -> Result<Vec<(usize, Linked)>, ServiceError> {
        let mut tx = self.db().begin().await?;
        let external_ids: Vec<&str> = checked.iter().map(|(i, ..)| batch[*i].1.as_str()).collect();
        let linked = inbox::linked_among(&mut tx, source, &external_ids).await?;
        let mut done = Vec::with_capacity(checked.len());
        let mut fresh = Vec::with_capacity(checked.len());
        for &(i, wf, stage) in checked {
            match linked.get(batch[i].1.as_str()) {
                Some(id) => done.push((i, Linked::Existing(*id))),
                None => fresh.push((i, wf, stage)),
            }
        }
        if fresh.is_empty() {
            tx.rollback().await?;
            return Ok(done);
        }

        let numbered = fresh.iter().filter(|(i, ..)| batch[*i].0.reference.is_none()).count();
        let mut numbers = match numbered {
            0 => Vec::new(),
            n => self.fresh_references(&mut tx, n).await?,
        }
        .into_iter();
        let mut writes: Vec<NewOrderWrite> = Vec::with_capacity(fresh.len());
        for &(i, wf, stage) in &fresh {
            let (new, external_id) = &batch[i];
            let reference = match &new.reference {
                Some(r) => r.clone(),
                None => numbers.next().ok_or_else(|| ServiceError::broken("fewer references than orders"))?,
            };
            let link = Some((source, external_id.as_str()));
            let Draft { write, .. } = self.draft(new, wf, stage, reference, actor, link, false)?;
            writes.push(write);
        }
        let written = orders::create_all(&mut tx, &writes).await?;
        tx.commit().await?;

        let mut created = Vec::with_capacity(fresh.len());
        for ((&(i, ..), write), ids) in fresh.iter().zip(writes).zip(written) {
            let mut order = write.order;
            order.id = ids.order_id;
            self.committed(&order);
            created.push((i, order));
        }
        let woken: Vec<_> = created.iter().map(|(i, order)| (order, Some(batch[*i].1.as_str()))).collect();
        self.wake_workshop_events(&woken).await;
        done.extend(created.into_iter().map(|(i, order)| (i, Linked::New(Box::new(order)))));
        Ok(done)
    }
}
