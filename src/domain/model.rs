//! Orders, line items and audit events as the rest of kiln sees them.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::order::{Channel, EmailAddress, Language, OrderRef, PhoneNumber, Source, TimeZone, Visibility};
use super::transition::{EventKind, OrderState};

/// How to reach the customer, and in which language.
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    /// Name as the customer gave it.
    pub name: String,
    /// Email address, if known.
    pub email: Option<EmailAddress>,
    /// Phone number (E.164) for SMS and WhatsApp, if known.
    pub phone: Option<PhoneNumber>,
    /// Telegram chat id, if the customer linked one.
    pub telegram_chat_id: Option<String>,
    /// Preferred channels, most preferred first.
    pub channels: Vec<Channel>,
    /// Language for messages and the tracking page.
    pub language: Language,
    /// Time zone for times shown to the customer.
    pub timezone: Option<TimeZone>,
}

/// Identifiers of the order in other systems.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalIds {
    /// Stripe Checkout Session or PaymentIntent id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stripe: Option<String>,
    /// Shopify order id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shopify: Option<String>,
}

/// One thing to make.
#[derive(Debug, Clone, PartialEq)]
pub struct LineItem {
    /// What it is, e.g. "Kitchen countertop, Calacatta marble".
    pub description: String,
    /// Variant or size, e.g. "XL" or "240 x 62 cm".
    pub variant: Option<String>,
    /// How many; at least one.
    pub quantity: u32,
    /// Material or technique, e.g. "18k gold" or "screen print".
    pub material: Option<String>,
    /// Free-form JSON object.
    pub metadata: Value,
}

/// An order with everything but its history.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Internal id.
    pub id: i64,
    /// Human-readable reference.
    pub reference: OrderRef,
    /// Workflow key.
    pub workflow: String,
    /// Stage, status and priority.
    pub state: OrderState,
    /// The customer.
    pub customer: Customer,
    /// Promised date, if any.
    pub due_date: Option<NaiveDate>,
    /// Notes only the shop sees.
    pub notes: String,
    /// A note shown to the customer on the tracking page.
    pub customer_note: String,
    /// Ids in Stripe, Shopify.
    pub external_ids: ExternalIds,
    /// Free-form JSON object.
    pub metadata: Value,
    /// Incremented on every change; guards against lost updates.
    pub version: i64,
    /// When the order entered its current stage.
    pub stage_entered_at: DateTime<Utc>,
    /// When the order was created.
    pub created_at: DateTime<Utc>,
    /// When the order last changed.
    pub updated_at: DateTime<Utc>,
}

/// One immutable entry in an order's audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Global, increasing id (also the SSE event id).
    pub id: i64,
    /// The order.
    pub order_id: i64,
    /// What happened.
    pub kind: EventKind,
    /// Stage before, for stage-related events.
    pub from_stage: Option<String>,
    /// Stage after, for stage-related events.
    pub to_stage: Option<String>,
    /// Who did it: a token name, an operator, a webhook sender or `system`.
    pub actor: String,
    /// Which door it came through.
    pub source: Source,
    /// Note shown with the event (to the customer if the event is customer-visible).
    pub note: Option<String>,
    /// Note only the shop sees.
    pub internal_note: Option<String>,
    /// Who may see the event.
    pub visibility: Visibility,
    /// Photos attached to the event.
    pub photo_ids: Vec<i64>,
    /// Extra facts, e.g. the fields an update changed.
    pub data: Value,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

impl Event {
    /// What this hold waits for from the customer (its data has `"waits_on": "customer"` and
    /// `"needs"`), or `None` for any other event and for a hold that waits on the shop.
    pub fn customer_need(&self) -> Option<&str> {
        let on_customer = self.data.get("waits_on").and_then(Value::as_str) == Some("customer");
        (self.kind == EventKind::Held && on_customer).then(|| self.data.get("needs").and_then(Value::as_str)).flatten()
    }
}

/// An event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// Stage before.
    pub from_stage: Option<String>,
    /// Stage after.
    pub to_stage: Option<String>,
    /// Who did it.
    pub actor: String,
    /// Which door it came through.
    pub source: Source,
    /// Note shown with the event.
    pub note: Option<String>,
    /// Note only the shop sees.
    pub internal_note: Option<String>,
    /// Who may see the event.
    pub visibility: Visibility,
    /// Photos attached.
    pub photo_ids: Vec<i64>,
    /// Extra facts.
    pub data: Value,
}

impl NewEvent {
    /// An internal event of `kind` by `actor`, with no stages, notes, photos or data.
    pub fn new(kind: EventKind, actor: &Actor) -> Self {
        Self {
            kind,
            from_stage: None,
            to_stage: None,
            actor: actor.name.clone(),
            source: actor.source,
            note: None,
            internal_note: None,
            visibility: Visibility::Internal,
            photo_ids: Vec::new(),
            data: Value::Null,
        }
    }
}

/// Who performed a change, and through which door.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A token name, operator name, webhook sender or `system`.
    pub name: String,
    /// Which door.
    pub source: Source,
}

/// Kinds of background job the outbox carries.
pub mod jobs {
    /// Tell the customer about an event through their channels.
    pub const NOTIFY_CUSTOMER: &str = "notify_customer";
    /// Publish an event to the configured outbound webhooks.
    pub const PUBLISH_EVENT: &str = "publish_event";
    /// Tell the shop's staff (e.g. about a new order).
    pub const NOTIFY_STAFF: &str = "notify_staff";
}

/// A job to enqueue in the same transaction as the change that causes it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// One of [`jobs`].
    pub kind: &'static str,
    /// Index, in the same commit's events, of the event the job is about.
    pub event: usize,
}
