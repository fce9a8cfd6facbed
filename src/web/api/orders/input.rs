//! Request bodies for creating and editing orders, and their parsing into domain types.

use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::change::Edits;
use crate::domain::model::{Customer, ExternalIds, LineItem};
use crate::domain::order::{Channel, EmailAddress, Language, OrderRef, PhoneNumber, Priority, TimeZone, parse_date};
use crate::service::NewOrder;
use crate::web::error::ApiError;
use crate::web::validate::{Check, double_option};

const MAX_ITEMS: usize = 500;
const MAX_NOTE: usize = 10_000;
const MAX_METADATA: usize = 16 * 1024;

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderIn {
    /// Your own reference; generated (e.g. `K-000124`) when absent.
    #[schema(example = "K-000124")]
    pub reference: Option<String>,
    /// Workflow key, e.g. `stone`.
    #[schema(example = "stone")]
    pub workflow: String,
    /// Starting stage; the workflow's first stage when absent.
    pub stage: Option<String>,
    /// `rush`, `standard` (default) or `hold`.
    #[schema(example = "standard")]
    pub priority: Option<String>,
    /// Who ordered it.
    pub customer: CustomerIn,
    /// What to make (1–500 items).
    pub items: Vec<ItemIn>,
    /// Promised date, `YYYY-MM-DD`.
    #[schema(example = "2026-12-24")]
    pub due_date: Option<String>,
    /// Notes only the shop sees.
    pub notes: Option<String>,
    /// A note the customer sees on the tracking page.
    pub customer_note: Option<String>,
    /// Ids in Stripe and Shopify.
    pub external_ids: Option<ExternalIds>,
    /// Free-form JSON object (up to 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// The customer of a new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerIn {
    /// Name.
    #[schema(example = "Ana Ribeiro")]
    pub name: String,
    /// Email address.
    #[schema(example = "ana@example.com")]
    pub email: Option<String>,
    /// Phone in international form.
    #[schema(example = "+393471234567")]
    pub phone: Option<String>,
    /// Telegram chat id.
    pub telegram_chat_id: Option<String>,
    /// Preferred channels in order: `email`, `sms`, `whatsapp`, `telegram`.
    pub channels: Option<Vec<String>>,
    /// Language tag, e.g. `en`, `it`, `es` (default `en`).
    pub language: Option<String>,
    /// IANA time zone, e.g. `Europe/Rome`.
    pub timezone: Option<String>,
}

/// One line item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// What it is.
    #[schema(example = "Kitchen countertop, Calacatta marble")]
    pub description: String,
    /// Variant or size.
    pub variant: Option<String>,
    /// How many (≥ 1).
    #[schema(example = 1)]
    pub quantity: i64,
    /// Material or technique.
    pub material: Option<String>,
    /// Free-form JSON object.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// Changes to an order; absent fields stay as they are, `null` clears optional ones.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderPatch {
    /// `rush`, `standard` or `hold` (entering or leaving `hold` holds or resumes the order).
    pub priority: Option<String>,
    /// Promised date `YYYY-MM-DD`, or `null`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub due_date: Option<Option<String>>,
    /// Notes only the shop sees.
    pub notes: Option<String>,
    /// Note shown to the customer.
    pub customer_note: Option<String>,
    /// Contact details and channels.
    pub customer: Option<CustomerPatch>,
}

/// Changes to the customer's contact details.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// Name.
    pub name: Option<String>,
    /// Email, or `null`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// Phone, or `null`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// Telegram chat id, or `null`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub telegram_chat_id: Option<Option<String>>,
    /// Preferred channels in order.
    pub channels: Option<Vec<String>>,
    /// Language tag.
    pub language: Option<String>,
    /// IANA time zone, or `null`.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
}

fn channels(check: &mut Check, field: &str, raw: &[String]) -> Vec<Channel> {
    let mut out: Vec<Channel> = Vec::new();
    for (i, name) in raw.iter().enumerate() {
        let path = format!("{field}[{i}]");
        if let Some(ch) = check.parse(&path, Channel::parse(name)) {
            if out.contains(&ch) {
                check.fail(path, format!("`{ch}` is listed twice"));
            } else {
                out.push(ch);
            }
        }
    }
    out
}

fn chat_id(check: &mut Check, field: &str, raw: &str) -> Option<String> {
    let id = raw.trim();
    let digits = id.strip_prefix('-').unwrap_or(id);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        check.fail(field, "must be a numeric Telegram chat id");
        return None;
    }
    Some(id.to_owned())
}

impl OrderIn {
    /// Parses every field, reporting all invalid ones together.
    pub fn parse(self) -> Result<NewOrder, ApiError> {
        let mut check = Check::default();
        let reference = self.reference.as_deref().and_then(|r| check.parse("reference", OrderRef::parse(r)));
        let priority = match self.priority.as_deref() {
            Some(p) => check.parse("priority", Priority::parse(p)),
            None => Some(Priority::Standard),
        };
        let customer = self.customer.parse(&mut check);
        if self.items.is_empty() {
            check.fail("items", "an order needs at least one item");
        } else if self.items.len() > MAX_ITEMS {
            check.fail("items", format!("at most {MAX_ITEMS} items per order"));
        }
        let items: Vec<LineItem> =
            self.items.into_iter().enumerate().map(|(i, item)| item.parse(&mut check, i)).collect();
        let due_date = self.due_date.as_deref().and_then(|d| check.parse("due_date", parse_date(d)));
        let notes = check.text("notes", self.notes.as_deref().unwrap_or(""), MAX_NOTE, false);
        let customer_note = check.text("customer_note", self.customer_note.as_deref().unwrap_or(""), MAX_NOTE, false);
        let metadata = check.json_object("metadata", self.metadata, MAX_METADATA);
        let workflow = self.workflow.trim().to_owned();
        if workflow.is_empty() {
            check.fail("workflow", "must not be empty");
        }
        check.finish()?;
        Ok(NewOrder {
            reference,
            workflow,
            stage: self.stage,
            priority: priority.unwrap_or(Priority::Standard),
            customer,
            items,
            due_date,
            notes,
            customer_note,
            external_ids: self.external_ids.unwrap_or_default(),
            metadata,
            created_at: None,
        })
    }
}

impl CustomerIn {
    fn parse(self, check: &mut Check) -> Customer {
        let name = check.text("customer.name", &self.name, 200, true);
        let email = self.email.as_deref().and_then(|e| check.parse("customer.email", EmailAddress::parse(e)));
        let phone = self.phone.as_deref().and_then(|p| check.parse("customer.phone", PhoneNumber::parse(p)));
        let telegram_chat_id =
            self.telegram_chat_id.as_deref().and_then(|t| chat_id(check, "customer.telegram_chat_id", t));
        let channels = match &self.channels {
            Some(list) => channels(check, "customer.channels", list),
            None => [
                (email.is_some(), Channel::Email),
                (phone.is_some(), Channel::Sms),
                (telegram_chat_id.is_some(), Channel::Telegram),
            ]
            .into_iter()
            .filter_map(|(known, ch)| known.then_some(ch))
            .collect(),
        };
        let language = match self.language.as_deref() {
            Some(l) => check.parse("customer.language", Language::parse(l)).unwrap_or_else(Language::english),
            None => Language::english(),
        };
        let timezone = self.timezone.as_deref().and_then(|z| check.parse("customer.timezone", TimeZone::parse(z)));
        Customer { name, email, phone, telegram_chat_id, channels, language, timezone }
    }
}

impl ItemIn {
    fn parse(self, check: &mut Check, i: usize) -> LineItem {
        let field = |name: &str| format!("items[{i}].{name}");
        let description = check.text(&field("description"), &self.description, 500, true);
        let quantity = match u32::try_from(self.quantity) {
            Ok(q) if (1..=1_000_000).contains(&q) => q,
            _ => {
                check.fail(field("quantity"), "must be a whole number from 1 to 1000000");
                1
            }
        };
        LineItem {
            description,
            variant: check.optional_text(&field("variant"), self.variant.as_deref(), 200),
            quantity,
            material: check.optional_text(&field("material"), self.material.as_deref(), 200),
            metadata: check.json_object(&field("metadata"), self.metadata, MAX_METADATA),
        }
    }
}

impl OrderPatch {
    /// Parses every field, reporting all invalid ones together.
    pub fn parse(self) -> Result<Edits, ApiError> {
        let mut check = Check::default();
        let mut edits = Edits {
            priority: self.priority.as_deref().and_then(|p| check.parse("priority", Priority::parse(p))),
            due_date: self.due_date.map(|d| d.and_then(|d| check.parse("due_date", parse_date(&d)))),
            notes: self.notes.map(|n| check.text("notes", &n, MAX_NOTE, false)),
            customer_note: self.customer_note.map(|n| check.text("customer_note", &n, MAX_NOTE, false)),
            ..Edits::default()
        };
        if let Some(c) = self.customer {
            edits.name = c.name.map(|n| check.text("customer.name", &n, 200, true));
            edits.email = c.email.map(|e| e.and_then(|e| check.parse("customer.email", EmailAddress::parse(&e))));
            edits.phone = c.phone.map(|p| p.and_then(|p| check.parse("customer.phone", PhoneNumber::parse(&p))));
            edits.telegram_chat_id =
                c.telegram_chat_id.map(|t| t.and_then(|t| chat_id(&mut check, "customer.telegram_chat_id", &t)));
            edits.channels = c.channels.map(|list| channels(&mut check, "customer.channels", &list));
            edits.language = c.language.and_then(|l| check.parse("customer.language", Language::parse(&l)));
            edits.timezone = c.timezone.map(|z| z.and_then(|z| check.parse("customer.timezone", TimeZone::parse(&z))));
        }
        if check.is_ok() && edits == Edits::default() {
            check.fail("body", "the patch changes nothing; send at least one field");
        }
        check.finish()?;
        Ok(edits)
    }
}
