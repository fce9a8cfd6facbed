//! Creating orders, with optional idempotency keys.

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value;

use super::{Service, ServiceError, change::recorded};
use crate::crypto::{random_token, token_hash};
use crate::domain::change::plan_creation;
use crate::domain::model::{Actor, Customer, Event, ExternalIds, LineItem, NewEvent, Order};
use crate::domain::order::{OrderRef, Priority, Status};
use crate::domain::transition::OrderState;
use crate::domain::workflow::{Stage, Workflow};
use crate::store::orders::{NewOrderWrite, Written};
use crate::store::{self, idempotency, inbox, is_unique_violation, orders};

/// Random bytes in a tracking token: 160 bits, above the 128 the threat model asks for.
pub(super) const TRACKING_TOKEN_BYTES: usize = 20;

/// A validated request for a new order.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// A reference chosen by the caller; generated when absent.
    pub reference: Option<OrderRef>,
    /// Workflow key.
    pub workflow: String,
    /// Starting stage; the workflow's first stage when absent (imports start mid-way).
    pub stage: Option<String>,
    /// Priority (`hold` creates a paused order).
    pub priority: Priority,
    /// The customer.
    pub customer: Customer,
    /// What to make.
    pub items: Vec<LineItem>,
    /// Promised date.
    pub due_date: Option<NaiveDate>,
    /// Shop-only notes.
    pub notes: String,
    /// Note shown to the customer.
    pub customer_note: String,
    /// Ids in other systems.
    pub external_ids: ExternalIds,
    /// Free-form JSON object.
    pub metadata: Value,
    /// When the order was placed, for imports; now when absent.
    pub created_at: Option<DateTime<Utc>>,
}

/// A new order ready to write, and its tracking token (stored only hashed and sealed).
pub(super) struct Draft<'a> {
    /// The rows to write.
    pub(super) write: NewOrderWrite<'a>,
    /// The token of its tracking link.
    pub(super) token: String,
}

/// How often a create with a generated reference is tried when a concurrent create with a
/// chosen reference takes that number first.
const GENERATED_REFERENCE_ATTEMPTS: u32 = 3;

/// What a refused new-order write means: a reference taken is the caller's to fix.
fn write_refused(e: sqlx::Error, reference: &OrderRef) -> ServiceError {
    if is_unique_violation(&e, "reference") {
        ServiceError::DuplicateReference(reference.to_string())
    } else {
        e.into()
    }
}

/// An idempotency key presented with a create request.
#[derive(Debug, Clone)]
pub struct Idempotency {
    /// The API token that sent it (keys are scoped per token).
    pub token_id: i64,
    /// The key.
    pub key: String,
    /// Hash of the canonical request body.
    pub request_hash: String,
}

/// A response as the HTTP edge would send it: status and JSON body.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// The order standing for an object of another system.
#[derive(Debug, Clone)]
pub enum Linked {
    /// Created now.
    New(Box<Order>),
    /// Created before, by an earlier event; its id.
    Existing(i64),
}

/// The outcome of a create request.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new order was created.
    New {
        /// The response to send.
        response: Rendered,
        /// The order.
        order: Box<Order>,
        /// Its `created` event.
        event: Box<Event>,
    },
    /// The idempotency key was seen before with the same body: the first response.
    Replayed(Rendered),
}

impl Service {
    /// Creates an order, its tracking link and `created` event, and enqueues the jobs a new
    /// order causes, in one transaction. `render` builds the response inside that
    /// transaction so that an idempotency key and its response are saved with the order.
    pub async fn create_order(
        &self,
        new: NewOrder,
        actor: &Actor,
        idem: Option<Idempotency>,
        render: impl FnOnce(&Order, &[LineItem], &str) -> Rendered,
    ) -> Result<Created, ServiceError> {
        self.create(new, actor, idem, None, false, render).await
    }

    /// Creates an order that waits for its payment (a Checkout kiln starts): in its first
    /// stage but `awaiting_payment`, so it is no work for the shop and nobody is told until
    /// [`crate::domain::change::Change::Paid`]. Returns it with its tracking URL.
    pub async fn create_awaiting_payment(&self, new: NewOrder, actor: &Actor) -> Result<(Order, String), ServiceError> {
        let render = |_: &Order, _: &[LineItem], url: &str| Rendered { status: 201, body: url.to_owned() };
        match self.create(new, actor, None, None, true, render).await? {
            Created::New { response, order, .. } => Ok((*order, response.body)),
            Created::Replayed(_) => Err(ServiceError::broken("an order without an idempotency key was replayed")),
        }
    }

    /// Creates the one order that stands for object `external_id` of `source` (a Stripe
    /// Checkout Session), or finds the one that already does: however many events name the
    /// object, and however concurrently they arrive, one order is created.
    pub async fn create_linked_order(
        &self,
        new: NewOrder,
        actor: &Actor,
        source: &str,
        external_id: &str,
    ) -> Result<Linked, ServiceError> {
        if let Some(id) = inbox::linked_order(self.db(), source, external_id).await? {
            return Ok(Linked::Existing(id));
        }
        let render = |_: &Order, _: &[LineItem], _: &str| Rendered { status: 201, body: String::new() };
        match self.create(new, actor, None, Some((source, external_id)), false, render).await? {
            Created::New { order, .. } => Ok(Linked::New(order)),
            Created::Replayed(_) => inbox::linked_order(self.db(), source, external_id)
                .await?
                .map(Linked::Existing)
                .ok_or_else(|| ServiceError::broken(format!("the order for {source} `{external_id}` vanished"))),
        }
    }

    async fn create(
        &self,
        new: NewOrder,
        actor: &Actor,
        idem: Option<Idempotency>,
        link: Option<(&str, &str)>,
        awaiting_payment: bool,
        render: impl FnOnce(&Order, &[LineItem], &str) -> Rendered,
    ) -> Result<Created, ServiceError> {
        let (wf, stage) = self.workflow_stage(&new)?;
        let mut attempt = 1;
        let (mut tx, write, token, written) = loop {
            let mut tx = self.db().begin().await?;
            if let Some(idem) = &idem
                && !idempotency::claim(&mut tx, idem.token_id, &idem.key, &idem.request_hash, store::now_ms()).await?
            {
                tx.rollback().await?;
                return self.replay(idem).await;
            }
            let reference = match &new.reference {
                Some(r) => r.clone(),
                None => self
                    .fresh_references(&mut tx, 1)
                    .await?
                    .pop()
                    .ok_or_else(|| ServiceError::broken("no reference was numbered"))?,
            };
            let Draft { write, token } = self.draft(&new, wf, stage, reference, actor, link, awaiting_payment)?;
            match orders::create_all(&mut tx, std::slice::from_ref(&write)).await {
                Ok(written) => break (tx, write, token, written),
                Err(e) if link.is_some() && inbox::is_link_taken(&e) => {
                    // Another event about the same object created its order first.
                    tx.rollback().await?;
                    return Ok(Created::Replayed(Rendered { status: 200, body: String::new() }));
                }
                // A concurrent create chose the number this one generated, after this one
                // saw it free: numbered again, it is skipped as taken.
                Err(e)
                    if new.reference.is_none()
                        && attempt < GENERATED_REFERENCE_ATTEMPTS
                        && is_unique_violation(&e, "reference") =>
                {
                    tx.rollback().await?;
                    attempt += 1;
                }
                Err(e) => return Err(write_refused(e, &write.order.reference)),
            }
        };
        let [Written { order_id, event_id }] = written[..] else {
            return Err(ServiceError::broken("one new order was written as several"));
        };
        let mut order = write.order;
        order.id = order_id;

        let response = render(&order, &new.items, &self.tracking_url_for(&token));
        if let Some(idem) = &idem {
            idempotency::save(&mut tx, idem.token_id, &idem.key, response.status, &response.body).await?;
        }
        tx.commit().await?;
        self.committed(&order);
        self.wake_workshop_events(&[(&order, link.map(|(_, id)| id))]).await;
        let event = recorded(write.event, event_id, order.id, order.created_at);
        Ok(Created::New { response, order: Box::new(order), event: Box::new(event) })
    }

    /// The next `n` generated references, in order, skipping numbers an order already has
    /// under a reference chosen for it: otherwise the counter, rolled back with each refused
    /// insert, would stop at that number and refuse every order after it.
    pub(super) async fn fresh_references(&self, tx: &mut store::Tx, n: usize) -> Result<Vec<OrderRef>, ServiceError> {
        let prefix = &self.config().reference_prefix;
        let mut fresh: Vec<OrderRef> = Vec::with_capacity(n);
        // Each round skips at least one taken reference; a shop would need that many orders
        // chosen in the counter's path to get here.
        for _ in 0..1_000 {
            let wanted = n - fresh.len();
            if wanted == 0 {
                return Ok(fresh);
            }
            // Numbers only grow, so the references stay in the counter's order.
            let first = orders::take_reference_numbers(tx, i64::try_from(wanted).unwrap_or(i64::MAX)).await?;
            let candidates: Vec<OrderRef> = (first..).take(wanted).map(|k| OrderRef::numbered(prefix, k)).collect();
            let texts: Vec<String> = candidates.iter().map(|r| r.as_str().to_owned()).collect();
            let taken = orders::references_taken(tx, &texts).await?;
            fresh.extend(candidates.into_iter().filter(|c| !taken.iter().any(|t| t == c.as_str())));
        }
        Err(ServiceError::broken("no free reference number in 1,000 rounds"))
    }

    /// The workflow of a new order and the stage it starts in, or why they are not valid.
    pub(super) fn workflow_stage(&self, new: &NewOrder) -> Result<(&Workflow, &Stage), ServiceError> {
        let wf = self.workflows().get(&new.workflow).ok_or_else(|| {
            ServiceError::invalid(
                "workflow",
                format!("unknown workflow `{}` (known: {})", new.workflow, self.workflows().keys().join(", ")),
            )
        })?;
        let stage = match &new.stage {
            Some(key) => wf.stage(key).ok_or_else(|| {
                let known: Vec<_> = wf.stages.iter().map(|s| s.key.as_str()).collect();
                ServiceError::invalid(
                    "stage",
                    format!("workflow `{}` has no stage `{key}` (stages: {})", wf.key, known.join(", ")),
                )
            })?,
            None => wf.first_stage(),
        };
        Ok((wf, stage))
    }

    /// Everything about a new order that is decided before it is written: the order itself
    /// under `reference`, its tracking token, and the event and jobs its creation causes.
    /// Both the single create and the batch build their orders here.
    #[expect(clippy::too_many_arguments, reason = "each is one decision of the caller's")]
    pub(super) fn draft<'a>(
        &self,
        new: &'a NewOrder,
        wf: &Workflow,
        stage: &Stage,
        reference: OrderRef,
        actor: &Actor,
        link: Option<(&'a str, &'a str)>,
        awaiting_payment: bool,
    ) -> Result<Draft<'a>, ServiceError> {
        let now = store::from_ms(new.created_at.unwrap_or_else(Utc::now).timestamp_millis());
        let status = if awaiting_payment {
            Status::AwaitingPayment
        } else if stage.is_final() {
            Status::Completed
        } else {
            Status::Open
        };
        let (priority, resume_priority) = match new.priority {
            Priority::Hold => (Priority::Hold, Some(Priority::Standard)),
            p => (p, None),
        };
        let order = Order {
            id: 0,
            reference,
            workflow: wf.key.to_string(),
            state: OrderState { stage: stage.key.to_string(), status, priority, resume_priority },
            customer: new.customer.clone(),
            due_date: new.due_date,
            notes: new.notes.clone(),
            customer_note: new.customer_note.clone(),
            external_ids: new.external_ids.clone(),
            metadata: new.metadata.clone(),
            version: 1,
            stage_entered_at: now,
            created_at: now,
            updated_at: now,
        };
        let token = random_token(TRACKING_TOKEN_BYTES);
        let sealed = self
            .inner
            .sealer
            .seal("tracking", &token)
            .map_err(|e| ServiceError::internal("cannot seal a tracking token", e))?;
        let plan = plan_creation(wf, order, actor);
        let Ok([event]) = <[NewEvent; 1]>::try_from(plan.events) else {
            return Err(ServiceError::broken("a new order's plan has not exactly one event"));
        };
        let write = NewOrderWrite {
            order: plan.order,
            items: &new.items,
            link,
            tracking_hash: token_hash(&token),
            tracking_sealed: sealed,
            event,
            jobs: plan.jobs.iter().map(|j| j.kind).collect(),
            at_ms: now.timestamp_millis(),
        };
        Ok(Draft { write, token })
    }

    /// Links order `order_id` to object `external_id` of `source` (a Checkout Session kiln
    /// created for it); `false` if that object already stands for an order.
    pub async fn link_order(&self, order_id: i64, source: &str, external_id: &str) -> Result<bool, ServiceError> {
        let mut tx = self.db().begin().await?;
        if inbox::link(&mut tx, source, external_id, order_id, store::now_ms()).await? {
            tx.commit().await?;
            Ok(true)
        } else {
            tx.rollback().await?;
            Ok(false)
        }
    }

    /// Puts the workshop system's events that arrived before these new orders (each with
    /// the external id it was created for) back in line, with one look for all of them.
    pub(super) async fn wake_workshop_events(&self, orders: &[(&Order, Option<&str>)]) {
        if self.config().intake.workshop.is_none() || orders.is_empty() {
            return;
        }
        let subjects: Vec<String> = orders
            .iter()
            .flat_map(|(order, external_id)| {
                std::iter::once(format!("ref:{}", order.reference)).chain(external_id.map(|id| format!("ext:{id}")))
            })
            .collect();
        match inbox::wake_parked_any(self.db(), "workshop", &subjects, store::now_ms()).await {
            Ok(0) => {}
            Ok(_) => self.inbox_signal().notify_one(),
            // They stay parked; an operator's replay applies them.
            Err(e) => tracing::warn!(error = %e, orders = orders.len(), "cannot wake parked workshop events"),
        }
    }

    async fn replay(&self, idem: &Idempotency) -> Result<Created, ServiceError> {
        let saved = idempotency::find(self.db(), idem.token_id, &idem.key)
            .await?
            .ok_or_else(|| ServiceError::broken(format!("idempotency key `{}` vanished", idem.key)))?;
        if !crate::crypto::constant_time_eq(saved.request_hash.as_bytes(), idem.request_hash.as_bytes()) {
            return Err(ServiceError::IdempotencyMismatch(idem.key.clone()));
        }
        let status = u16::try_from(saved.status).map_err(|e| ServiceError::internal("stored status is invalid", e))?;
        Ok(Created::Replayed(Rendered { status, body: saved.body }))
    }
}
