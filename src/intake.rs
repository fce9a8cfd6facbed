//! Orders that arrive by themselves. A webhook is verified on its raw bytes and recorded in
//! the inbox before the sender gets its answer; the applier then acts on it through the one
//! change path, so a crash after the answer loses nothing (the inbox is the record, not the
//! request) and a redelivery changes nothing.

pub mod config;
pub mod stripe;
mod stripe_api;

use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::domain::model::{Actor, Customer, ExternalIds, LineItem};
use crate::domain::order::{EmailAddress, Language, PhoneNumber, Priority, Source};
use crate::service::{Linked, NewOrder, Service};
use crate::store::inbox::{self, Entry, Outcome};
use crate::store::now_ms;
use config::StripeConfig;
use stripe::{Intent, Session};

/// How long a claimed delivery is reserved for its applier.
const LEASE: Duration = Duration::from_secs(60);
/// Attempts before a delivery that keeps failing is marked failed.
const MAX_ATTEMPTS: i64 = 10;
/// Deliveries claimed per round.
const BATCH: i64 = 32;

/// Applies recorded deliveries; one per `kiln serve`, several may share a PostgreSQL database.
#[derive(Debug)]
pub struct Applier {
    service: Service,
    http: reqwest::Client,
}

impl Applier {
    /// An applier over `service`.
    pub fn new(service: Service) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Self { service, http }))
    }

    /// Applies deliveries as they arrive until `stop` is cancelled.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        loop {
            let handled = match self.drain_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim inbox deliveries");
                    0
                }
            };
            if handled > 0 {
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.service.inbox_signal().notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Applies every delivery due now, once; returns how many (for tests and tools).
    pub async fn drain_once(&self) -> Result<usize, sqlx::Error> {
        let lease = i64::try_from(LEASE.as_millis()).unwrap_or(i64::MAX / 4);
        let entries = inbox::claim(self.service.db(), now_ms(), lease, BATCH).await?;
        for entry in &entries {
            let outcome = self.apply(entry).await;
            match &outcome {
                Outcome::Retry { error, .. } | Outcome::Failed(error) => {
                    tracing::warn!(id = entry.id, source = %entry.source, %error, "inbox delivery not applied");
                }
                _ => tracing::debug!(id = entry.id, source = %entry.source, ?outcome, "inbox delivery handled"),
            }
            if !inbox::finish(self.service.db(), entry, &outcome, now_ms()).await? {
                tracing::warn!(id = entry.id, "inbox delivery was taken over by another applier");
            }
        }
        Ok(entries.len())
    }

    async fn apply(&self, entry: &Entry) -> Outcome {
        match entry.source.as_str() {
            "stripe" => match &self.service.config().intake.stripe {
                Some(config) => self.apply_stripe(config, entry).await,
                None => Outcome::Parked("Stripe intake is not configured any more".to_owned()),
            },
            other => Outcome::Failed(format!("unknown source `{other}`")),
        }
    }

    async fn apply_stripe(&self, config: &StripeConfig, entry: &Entry) -> Outcome {
        let db = self.service.db();
        let retry = |e: &dyn std::fmt::Display| self.retry(entry, format!("database: {e}"));
        match stripe::intent(&entry.topic, entry.payload.as_bytes()) {
            Intent::Ignore(why) => Outcome::Ignored(why),
            Intent::Paid(session) => {
                match inbox::linked_order(db, "stripe", &session.id).await {
                    Ok(Some(id)) => return self.already(id, &session).await,
                    Ok(None) => {}
                    Err(e) => return retry(&e),
                }
                let items = match self.line_items(config, &session, entry).await {
                    Ok(items) => items,
                    Err(outcome) => return outcome,
                };
                let new = self.new_order(config, &session, items);
                let actor = Actor { name: "stripe".to_owned(), source: Source::Webhook };
                match self.service.create_linked_order(new, &actor, "stripe", &session.id).await {
                    Ok(Linked::New(order)) => {
                        // Events parked until the order existed can be settled now.
                        if let Err(e) = inbox::wake_parked(db, "stripe", &session.id, now_ms()).await {
                            tracing::warn!(error = %e, "cannot wake parked Stripe events");
                        }
                        self.service.inbox_signal().notify_one();
                        Outcome::Applied(Some(order.id))
                    }
                    Ok(Linked::Existing(id)) => self.already(id, &session).await,
                    Err(crate::service::ServiceError::Invalid { field, message }) => {
                        Outcome::Failed(format!("the session cannot become an order: {field}: {message}"))
                    }
                    Err(e) => self.retry(entry, e.chain()),
                }
            }
            Intent::AwaitingPayment(session) => match inbox::linked_order(db, "stripe", &session.id).await {
                Ok(Some(id)) => self.already(id, &session).await,
                Ok(None) => Outcome::Parked(
                    "the payment is still pending; the order is created when Stripe reports it paid".to_owned(),
                ),
                Err(e) => retry(&e),
            },
            Intent::PaymentFailed(session) | Intent::Expired(session) => {
                let what = if entry.topic.ends_with("expired") { "expired" } else { "its payment failed" };
                match inbox::linked_order(db, "stripe", &session.id).await {
                    Ok(Some(id)) => Outcome::Ignored(format!(
                        "the session {what}, but order {} was already made for it from a payment",
                        self.reference(id).await
                    )),
                    Ok(None) => Outcome::Ignored(format!("the session {what}; no order was made for it")),
                    Err(e) => retry(&e),
                }
            }
        }
    }

    /// The outcome for an event about a session whose order exists: nothing more to do.
    async fn already(&self, order_id: i64, session: &Session) -> Outcome {
        let reference = self.reference(order_id).await;
        Outcome::Ignored(format!("order {reference} was already made for session {}", session.id))
    }

    async fn reference(&self, order_id: i64) -> String {
        match crate::store::orders::by_id(self.service.db(), order_id).await {
            Ok(Some(order)) => order.reference.to_string(),
            _ => format!("#{order_id}"),
        }
    }

    /// A retry with backoff (1 s, doubling, at most 5 minutes), or failed after
    /// [`MAX_ATTEMPTS`].
    fn retry(&self, entry: &Entry, error: String) -> Outcome {
        if entry.attempts >= MAX_ATTEMPTS {
            return Outcome::Failed(format!("gave up after {} attempts: {error}", entry.attempts));
        }
        let exponent = u32::try_from(entry.attempts.clamp(1, 20) - 1).unwrap_or(0);
        let wait = 1_000_i64.saturating_mul(1 << exponent).min(300_000);
        Outcome::Retry { error, retry_at: now_ms() + wait }
    }

    /// The session's line items from Stripe's API; unknown items (and a note why) without an
    /// API key, or once the API has refused or failed for good.
    async fn line_items(&self, config: &StripeConfig, session: &Session, entry: &Entry) -> Result<Items, Outcome> {
        let Some(key) = &config.api_key else {
            return Ok(Items::unknown("no Stripe API key is configured, so the items were not read"));
        };
        match stripe_api::line_items(&self.http, config, key.expose_secret(), &session.id).await {
            Ok(items) if items.is_empty() => Ok(Items::unknown("Stripe listed no line items for the session")),
            Ok(items) => Ok(Items { items, note: None }),
            Err(stripe_api::Error::Transient(e)) if entry.attempts < MAX_ATTEMPTS => Err(self.retry(entry, e)),
            Err(stripe_api::Error::Transient(e) | stripe_api::Error::Refused(e)) => {
                Ok(Items::unknown(&format!("the items could not be read from Stripe: {e}")))
            }
        }
    }

    fn new_order(&self, config: &StripeConfig, session: &Session, items: Items) -> NewOrder {
        let shop = &self.service.config().shop;
        let wanted = session.metadata.get("kiln_workflow").and_then(Value::as_str);
        let workflow =
            wanted.filter(|w| self.service.workflows().get(w).is_some()).unwrap_or(&config.default_workflow).to_owned();
        let email = session.email.as_deref().and_then(|e| EmailAddress::parse(e).ok());
        let phone = session.phone.as_deref().and_then(|p| PhoneNumber::parse(p).ok());
        // Stripe's `auto` and unknown locales fall back to the shop's language.
        let language = session
            .locale
            .as_deref()
            .and_then(|l| Language::parse(l).ok())
            .or_else(|| Language::parse(&shop.language).ok())
            .unwrap_or_else(|| Language::parse("en").unwrap_or_else(|_| unreachable!("`en` is a language tag")));
        let name =
            session.name.clone().or_else(|| session.email.clone()).unwrap_or_else(|| "Stripe customer".to_owned());
        let mut notes = format!("Paid through Stripe Checkout (session {}).", session.id);
        if let (Some(amount), Some(currency)) = (session.amount_total, &session.currency) {
            notes.push_str(&format!(" Amount: {} {}.", minor_units(amount), currency.to_uppercase()));
        }
        if let Some(note) = &items.note {
            notes.push(' ');
            notes.push_str(note);
        }
        NewOrder {
            reference: None,
            workflow,
            stage: None,
            priority: Priority::Standard,
            customer: Customer {
                name,
                email,
                phone,
                telegram_chat_id: None,
                channels: Vec::new(),
                language,
                timezone: None,
            },
            items: items.items,
            due_date: None,
            notes,
            customer_note: String::new(),
            external_ids: ExternalIds { stripe: Some(session.id.clone()), shopify: None },
            metadata: json!({ "stripe": {
                "amount_total": session.amount_total,
                "currency": session.currency,
                "metadata": session.metadata,
                "wanted_workflow": wanted,
            }}),
            created_at: None,
        }
    }
}

/// An amount in a currency's smallest unit, shown with two decimals.
fn minor_units(amount: i64) -> String {
    format!("{}.{:02}", amount / 100, (amount % 100).abs())
}

/// Line items, or a single "unknown" item and the reason.
struct Items {
    items: Vec<LineItem>,
    note: Option<String>,
}

impl Items {
    fn unknown(why: &str) -> Self {
        let item = LineItem {
            description: "Items unknown (see the order notes)".to_owned(),
            variant: None,
            quantity: 1,
            material: None,
            metadata: json!({ "unknown": true }),
        };
        Self { items: vec![item], note: Some(format!("{why}.")) }
    }
}
