//! Response bodies for orders and their events.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::model::{Event, ExternalIds, LineItem, Order};
use crate::domain::transition::{AllowedAction, allowed_actions};
use crate::domain::workflow::Workflows;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The stage an order is in.
#[derive(Debug, Serialize, ToSchema)]
pub struct StageOut {
    /// Stage key.
    #[schema(example = "fabrication")]
    pub key: String,
    /// Label.
    #[schema(example = "Fabrication")]
    pub label: String,
    /// When the order entered it (RFC 3339).
    pub entered_at: String,
}

/// The customer of an order.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerOut {
    /// Name.
    pub name: String,
    /// Email.
    pub email: Option<String>,
    /// Phone (E.164).
    pub phone: Option<String>,
    /// Telegram chat id.
    pub telegram_chat_id: Option<String>,
    /// Preferred channels, in order.
    pub channels: Vec<String>,
    /// Language tag.
    pub language: String,
    /// IANA time zone.
    pub timezone: Option<String>,
}

/// A line item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemOut {
    /// What it is.
    pub description: String,
    /// Variant or size.
    pub variant: Option<String>,
    /// How many.
    pub quantity: u32,
    /// Material or technique.
    pub material: Option<String>,
    /// Free-form JSON.
    #[schema(value_type = Object)]
    pub metadata: Value,
}

/// An order with its items, link and the actions possible now.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderOut {
    /// Human-readable reference.
    #[schema(example = "K-000123")]
    pub reference: String,
    /// Workflow key.
    pub workflow: String,
    /// Current stage.
    pub stage: StageOut,
    /// `open`, `completed`, `cancelled`, or `awaiting_payment` (a Stripe Checkout not paid yet: no work).
    pub status: String,
    /// `rush`, `standard` or `hold`.
    pub priority: String,
    /// The customer.
    pub customer: CustomerOut,
    /// What to make.
    pub items: Vec<ItemOut>,
    /// Promised date.
    pub due_date: Option<String>,
    /// Shop-only notes.
    pub notes: String,
    /// Note the customer sees.
    pub customer_note: String,
    /// Ids in other systems.
    pub external_ids: ExternalIds,
    /// Free-form JSON.
    #[schema(value_type = Object)]
    pub metadata: Value,
    /// The private tracking page, or `null` if the link was revoked.
    pub tracking_url: Option<String>,
    /// What can be done to the order now.
    pub allowed_actions: Vec<AllowedAction>,
    /// Incremented on every change.
    pub version: i64,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// An order in a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderSummaryOut {
    /// Reference.
    pub reference: String,
    /// Workflow key.
    pub workflow: String,
    /// Current stage.
    pub stage: StageOut,
    /// Status.
    pub status: String,
    /// Priority.
    pub priority: String,
    /// Customer name.
    pub customer_name: String,
    /// Promised date.
    pub due_date: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

/// A page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    /// Orders, newest first.
    pub items: Vec<OrderSummaryOut>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One audit event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Increasing id.
    pub id: i64,
    /// `created`, `moved`, `held`, `resumed`, `cancelled`, `noted`, `updated`, `link_reissued`, `link_revoked`.
    pub kind: String,
    /// Stage before.
    pub from_stage: Option<String>,
    /// Stage after.
    pub to_stage: Option<String>,
    /// Who did it.
    pub actor: String,
    /// `api`, `ops`, `webhook` or `system`.
    pub source: String,
    /// Note (customer-visible when the event is).
    pub note: Option<String>,
    /// Shop-only note.
    pub internal_note: Option<String>,
    /// `customer` or `internal`.
    pub visibility: String,
    /// Attached photos.
    pub photo_ids: Vec<i64>,
    /// Extra facts.
    #[schema(value_type = Object)]
    pub data: Value,
    /// When (RFC 3339).
    pub at: String,
}

/// Events of an order, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    /// The events.
    pub items: Vec<EventOut>,
}

fn stage_out(order: &Order, workflows: &Workflows) -> StageOut {
    let label = workflows
        .get(&order.workflow)
        .and_then(|wf| wf.stage(&order.state.stage))
        .map_or_else(|| order.state.stage.clone(), |s| s.wording.label.clone());
    StageOut { key: order.state.stage.clone(), label, entered_at: rfc3339(order.stage_entered_at) }
}

impl OrderOut {
    /// Builds the full view of an order.
    pub fn new(order: &Order, items: &[LineItem], tracking_url: Option<String>, workflows: &Workflows) -> Self {
        let c = &order.customer;
        Self {
            reference: order.reference.to_string(),
            workflow: order.workflow.clone(),
            stage: stage_out(order, workflows),
            status: order.state.status.to_string(),
            priority: order.state.priority.to_string(),
            customer: CustomerOut {
                name: c.name.clone(),
                email: c.email.as_ref().map(ToString::to_string),
                phone: c.phone.as_ref().map(ToString::to_string),
                telegram_chat_id: c.telegram_chat_id.clone(),
                channels: c.channels.iter().map(ToString::to_string).collect(),
                language: c.language.to_string(),
                timezone: c.timezone.map(|z| z.as_str().to_owned()),
            },
            items: items
                .iter()
                .map(|i| ItemOut {
                    description: i.description.clone(),
                    variant: i.variant.clone(),
                    quantity: i.quantity,
                    material: i.material.clone(),
                    metadata: i.metadata.clone(),
                })
                .collect(),
            due_date: order.due_date.map(|d| d.to_string()),
            notes: order.notes.clone(),
            customer_note: order.customer_note.clone(),
            external_ids: order.external_ids.clone(),
            metadata: order.metadata.clone(),
            tracking_url,
            allowed_actions: workflows
                .get(&order.workflow)
                .map(|wf| allowed_actions(wf, &order.state))
                .unwrap_or_default(),
            version: order.version,
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
        }
    }
}

impl OrderSummaryOut {
    /// Builds the list view of an order.
    pub fn new(order: &Order, workflows: &Workflows) -> Self {
        Self {
            reference: order.reference.to_string(),
            workflow: order.workflow.clone(),
            stage: stage_out(order, workflows),
            status: order.state.status.to_string(),
            priority: order.state.priority.to_string(),
            customer_name: order.customer.name.clone(),
            due_date: order.due_date.map(|d| d.to_string()),
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
        }
    }
}

impl From<&Event> for EventOut {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id,
            kind: e.kind.to_string(),
            from_stage: e.from_stage.clone(),
            to_stage: e.to_stage.clone(),
            actor: e.actor.clone(),
            source: e.source.to_string(),
            note: e.note.clone(),
            internal_note: e.internal_note.clone(),
            visibility: e.visibility.to_string(),
            photo_ids: e.photo_ids.clone(),
            data: e.data.clone(),
            at: rfc3339(e.created_at),
        }
    }
}
