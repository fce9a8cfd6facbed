//! Orders that arrive by themselves. A webhook is verified on its raw bytes and recorded in
//! the inbox before the sender gets its answer; the applier then acts on it through the one
//! change path, so a crash after the answer loses nothing (the inbox is the record, not the
//! request) and a redelivery changes nothing.

pub mod checkout;
pub mod config;
pub mod csv_import;
pub mod reconcile;
pub mod shopify;
mod shopify_api;
pub mod shopify_apply;
mod shopify_compliance;
pub mod shopify_writeback;
pub mod stripe;
mod stripe_api;
pub mod workshop;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::domain::change::Change;
use crate::domain::model::{Actor, Customer, ExternalIds, LineItem, Order};
use crate::domain::order::{EmailAddress, Language, PhoneNumber, Priority, Source, Status, Visibility};
use crate::domain::transition::Action;
use crate::service::{Linked, NewOrder, Service, ServiceError};
use crate::store::inbox::{self, Entry, Outcome};
use crate::store::{now_ms, orders};
use config::StripeConfig;
use stripe::{Intent, Session};
use workshop::OrderKey;

/// Attempts before a delivery that keeps failing is marked failed.
pub(crate) const MAX_ATTEMPTS: i64 = 10;
/// Deliveries claimed per round.
const BATCH: i64 = 32;
/// Deliveries of a round applied at once.
const CONCURRENCY: usize = 8;

/// Applies recorded deliveries; one per `kiln serve`, several may share a PostgreSQL database.
#[derive(Debug)]
pub struct Applier {
    service: Service,
    http: reqwest::Client,
    /// Shopify product types by product id, and when they were read (routing by type).
    product_types: std::sync::Mutex<std::collections::HashMap<i64, (String, std::time::Instant)>>,
}

impl Applier {
    /// An applier over `service`.
    pub fn new(service: Service) -> anyhow::Result<Arc<Self>> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Self { service, http, product_types: std::sync::Mutex::default() }))
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
        let lease = self.service.config().intake.lease;
        let lease = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 4);
        let entries = inbox::claim(self.service.db(), now_ms(), lease, BATCH).await?;
        // A claimed batch never holds two deliveries of one subject (the later waits behind
        // the earlier), so its deliveries can be applied side by side.
        let count = entries.len();
        let finished = futures::stream::iter(entries)
            .map(|entry| async move {
                let entry = &entry;
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
                Ok::<(), sqlx::Error>(())
            })
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        finished.into_iter().collect::<Result<(), _>>()?;
        Ok(count)
    }

    async fn apply(&self, entry: &Entry) -> Outcome {
        match entry.source.as_str() {
            "stripe" => match &self.service.config().intake.stripe {
                Some(config) => self.apply_stripe(config, entry).await,
                None => Outcome::Parked("Stripe intake is not configured any more".to_owned()),
            },
            "shopify" => match &self.service.config().intake.shopify {
                Some(config) => self.apply_shopify(config, entry).await,
                None => Outcome::Parked("Shopify intake is not configured any more".to_owned()),
            },
            "workshop" => match &self.service.config().intake.workshop {
                Some(_) => self.apply_workshop(entry).await,
                None => Outcome::Parked("the workshop webhook is not configured any more".to_owned()),
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
                match self.checkout_order(&session).await {
                    Ok(Some(order)) if order.state.status == Status::AwaitingPayment => {
                        return self.pay(entry, &order, &session).await;
                    }
                    Ok(_) => {}
                    Err(e) => return retry(&e),
                }
                // A delivery whose order exists although no delivery of its session is recorded
                // as applied made that order itself, and its applier died before saying so.
                match inbox::linked_order(db, "stripe", &session.id).await {
                    Ok(Some(id)) => match inbox::applied_about(db, "stripe", &session.id, entry.id).await {
                        Ok(false) => Outcome::Applied(Some(id)),
                        Ok(true) => self.already(id, &session).await,
                        Err(e) => retry(&e),
                    },
                    Ok(None) => self.create_for_session(config, &session, entry.attempts).await,
                    Err(e) => retry(&e),
                }
            }
            Intent::AwaitingPayment(session) => match self.checkout_order(&session).await {
                Ok(Some(order)) if order.state.status == Status::AwaitingPayment => Outcome::Ignored(format!(
                    "the payment is still pending; order {} enters production when Stripe reports it paid",
                    order.reference
                )),
                Ok(Some(order)) => {
                    Outcome::Ignored(format!("order {} was already made for session {}", order.reference, session.id))
                }
                Ok(None) => Outcome::Parked(
                    "the payment is still pending; the order is created when Stripe reports it paid".to_owned(),
                ),
                Err(e) => retry(&e),
            },
            Intent::PaymentFailed(session) | Intent::Expired(session) => {
                let what = if entry.topic.ends_with("expired") { "expired" } else { "its payment failed" };
                match self.checkout_order(&session).await {
                    Ok(Some(order)) if order.state.status == Status::AwaitingPayment => {
                        self.call_off(entry, &order, &session, what).await
                    }
                    Ok(Some(order)) => Outcome::Ignored(format!(
                        "the session {what}, but order {} is {} (it was paid, or called off before)",
                        order.reference, order.state.status
                    )),
                    Ok(None) => Outcome::Ignored(format!("the session {what}; no order was made for it")),
                    Err(e) => retry(&e),
                }
            }
        }
    }

    /// The order standing for `session`: the one linked to it, or the one kiln made for a
    /// Checkout it started (named by `client_reference_id`) whose link is not stored yet.
    async fn checkout_order(&self, session: &Session) -> Result<Option<Order>, sqlx::Error> {
        let db = self.service.db();
        if let Some(id) = inbox::linked_order(db, "stripe", &session.id).await? {
            return orders::by_id(db, id).await;
        }
        let Some(reference) = &session.client_reference_id else {
            return Ok(None);
        };
        // A reference alone is not enough: another system may set `client_reference_id` too.
        let order = orders::by_reference(db, reference).await?;
        Ok(order.filter(|o| o.state.status == Status::AwaitingPayment && o.metadata.get("kiln_checkout").is_some()))
    }

    /// Puts a paid order kiln made for a Checkout into its first stage, through the change path.
    async fn pay(&self, entry: &Entry, order: &Order, session: &Session) -> Outcome {
        let mut note = format!("Paid through Stripe Checkout (session {}).", session.id);
        if let (Some(amount), Some(currency)) = (session.amount_total, &session.currency) {
            note.push_str(&format!(" Amount: {} {}.", minor_units(amount), currency.to_uppercase()));
        }
        let change = Change::Paid { internal_note: Some(note) };
        let actor = Actor { name: "stripe".to_owned(), source: Source::Webhook };
        match self.service.change(order.reference.as_str(), &change, &actor).await {
            Ok(_) => {
                // Its link may not be stored yet if the payment beat kiln's own answer.
                if let Err(e) = self.service.link_order(order.id, "stripe", &session.id).await {
                    tracing::warn!(error = %e.chain(), "cannot link a paid Checkout Session");
                }
                Outcome::Applied(Some(order.id))
            }
            Err(ServiceError::Refused(refusal)) => Outcome::Ignored(format!(
                "order {} was not awaiting payment: {}",
                order.reference,
                refusal_text(&refusal)
            )),
            Err(e) => self.retry(entry, e.chain()),
        }
    }

    /// Cancels an unpaid order kiln made for a Checkout that expired or whose payment failed.
    async fn call_off(&self, entry: &Entry, order: &Order, session: &Session, what: &str) -> Outcome {
        let change = Change::Act {
            action: Action::Cancel,
            expected_stage: None,
            note: None,
            internal_note: Some(format!("Stripe Checkout session {} {what}; the order was never paid.", session.id)),
            photo_ids: Vec::new(),
        };
        let actor = Actor { name: "stripe".to_owned(), source: Source::Webhook };
        match self.service.change(order.reference.as_str(), &change, &actor).await {
            Ok(_) => Outcome::Applied(Some(order.id)),
            Err(ServiceError::Refused(refusal)) => {
                Outcome::Ignored(format!("order {} stays as it is: {}", order.reference, refusal_text(&refusal)))
            }
            Err(e) => self.retry(entry, e.chain()),
        }
    }

    /// Moves an order to the stage the workshop system reports, with its note and photos —
    /// unless the order does not exist yet (parked until it does), the event is older than
    /// one already applied, or it would move the order backwards (ignored, with the reason).
    async fn apply_workshop(&self, entry: &Entry) -> Outcome {
        let event = match workshop::parse(entry.payload.as_bytes()) {
            Ok(event) => event,
            Err(why) => return Outcome::Ignored(format!("not a workshop event kiln can read: {why}")),
        };
        let db = self.service.db();
        let found = match &event.order {
            OrderKey::Reference(r) => self.service.order_id(r).await,
            OrderKey::External(e) => inbox::linked_order_any(db, e).await.map_err(ServiceError::from),
        };
        let named = match &event.order {
            OrderKey::Reference(r) => format!("order {r}"),
            OrderKey::External(e) => format!("an order for `{e}`"),
        };
        let order = match found {
            Ok(Some(id)) => match orders::by_id(db, id).await {
                Ok(Some(order)) => order,
                Ok(None) => return Outcome::Parked(format!("there is no {named} yet; applied when it arrives")),
                Err(e) => return self.retry(entry, format!("database: {e}")),
            },
            Ok(None) => return Outcome::Parked(format!("there is no {named} yet; applied when it arrives")),
            Err(e) => return self.retry(entry, e.chain()),
        };
        match inbox::latest_applied(db, "workshop", order.id).await {
            Ok(Some(latest)) if latest >= event.occurred_at => {
                let at = crate::store::from_ms(latest).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                return Outcome::Ignored(format!("older than an event of {at} already applied to {}", order.reference));
            }
            Ok(_) => {}
            Err(e) => return self.retry(entry, format!("database: {e}")),
        }
        let Some(wf) = self.service.workflows().get(&order.workflow) else {
            return Outcome::Failed(format!("workflow `{}` is not loaded", order.workflow));
        };
        let (Some(to), Some(here)) = (wf.position(&event.stage), wf.position(&order.state.stage)) else {
            return Outcome::Ignored(format!("workflow `{}` has no stage `{}`", wf.key, event.stage));
        };
        if to == here {
            return Outcome::Ignored(format!("{} is already at `{}`", order.reference, event.stage));
        }
        if to < here {
            return Outcome::Ignored(format!(
                "it would move {} backwards, from `{}` to `{}`",
                order.reference, order.state.stage, event.stage
            ));
        }
        let actor = Actor { name: "workshop".to_owned(), source: Source::Webhook };
        let (photo_ids, mut problems) = match self.workshop_photos(&event, &order, &actor, entry).await {
            Ok(done) => done,
            Err(outcome) => return outcome,
        };
        problems.extend(event.internal_note.clone());
        let change = Change::Act {
            action: Action::Move { to: event.stage.clone() },
            expected_stage: None,
            note: event.note.clone(),
            internal_note: (!problems.is_empty()).then(|| problems.join(" ")),
            photo_ids,
        };
        match self.service.change(order.reference.as_str(), &change, &actor).await {
            Ok(_) => Outcome::Applied(Some(order.id)),
            Err(ServiceError::Refused(refusal)) => {
                Outcome::Ignored(format!("the workflow refuses the move: {}", refusal_text(&refusal)))
            }
            Err(e) => self.retry(entry, e.chain()),
        }
    }

    /// Fetches and stores the event's photos; a photo that cannot be had is left out, and
    /// the returned notes say which and why. A peer that may recover makes the whole event
    /// wait for a retry.
    async fn workshop_photos(
        &self,
        event: &workshop::StageChanged,
        order: &crate::domain::model::Order,
        actor: &Actor,
        entry: &Entry,
    ) -> Result<(Vec<i64>, Vec<String>), Outcome> {
        let max = self.service.config().media.max_bytes;
        let (mut ids, mut problems) = (Vec::new(), Vec::new());
        for (i, url) in event.photo_urls.iter().enumerate() {
            let field = format!("photo_urls[{i}]");
            let bytes = match fetch_capped(&self.http, url, max).await {
                Ok(bytes) => bytes,
                Err(Fetch::Transient(e)) if entry.attempts < MAX_ATTEMPTS => return Err(self.retry(entry, e)),
                Err(Fetch::Transient(e) | Fetch::Refused(e)) => {
                    problems.push(format!("Photo {url} left out: {e}."));
                    continue;
                }
            };
            let upload = crate::service::Upload { field: field.clone(), bytes };
            let stored = self.service.store_photos(order.id, vec![upload], Visibility::Customer, None, actor).await;
            match stored {
                Ok(new) => ids.extend(new),
                Err(ServiceError::Photo { source, .. }) => problems.push(format!("Photo {url} left out: {source}.")),
                Err(e) => return Err(self.retry(entry, e.chain())),
            }
        }
        Ok((ids, problems))
    }

    /// Makes sure the order of a paid session exists: creates it (once, however many callers
    /// race) with its line items, or says it was made before. `attempts` so far decides
    /// whether an unreachable Stripe API is worth a retry.
    pub async fn paid_session(&self, config: &StripeConfig, session: &Session, attempts: i64) -> Outcome {
        match inbox::linked_order(self.service.db(), "stripe", &session.id).await {
            Ok(Some(id)) => self.already(id, session).await,
            Ok(None) => self.create_for_session(config, session, attempts).await,
            Err(e) => self.retry_after(attempts, format!("database: {e}")),
        }
    }

    /// Creates the order of a paid session no order was linked to when last looked at (a
    /// concurrent creator still loses to the unique link: [`Linked::Existing`]).
    async fn create_for_session(&self, config: &StripeConfig, session: &Session, attempts: i64) -> Outcome {
        let db = self.service.db();
        let items = match self.line_items(config, session, attempts).await {
            Ok(items) => items,
            Err(outcome) => return outcome,
        };
        let new = self.new_order(config, session, items);
        let actor = Actor { name: "stripe".to_owned(), source: Source::Webhook };
        match self.service.create_linked_order(new, &actor, "stripe", &session.id).await {
            Ok(Linked::New(order)) => {
                // Events parked until the order existed can be settled now.
                if let Err(e) = inbox::wake_parked_any(db, "stripe", std::slice::from_ref(&session.id), now_ms()).await
                {
                    tracing::warn!(error = %e, "cannot wake parked Stripe events");
                }
                self.service.inbox_signal().notify_one();
                Outcome::Applied(Some(order.id))
            }
            Ok(Linked::Existing(id)) => self.already(id, session).await,
            Err(ServiceError::Invalid { field, message }) => {
                Outcome::Failed(format!("the session cannot become an order: {field}: {message}"))
            }
            Err(e) => self.retry_after(attempts, e.chain()),
        }
    }

    /// The outcome for an event about a session whose order exists: nothing more to do.
    async fn already(&self, order_id: i64, session: &Session) -> Outcome {
        let reference = self.reference(order_id).await;
        Outcome::Ignored(format!("order {reference} was already made for session {}", session.id))
    }

    async fn reference(&self, order_id: i64) -> String {
        match orders::by_id(self.service.db(), order_id).await {
            Ok(Some(order)) => order.reference.to_string(),
            _ => format!("#{order_id}"),
        }
    }

    /// A retry with backoff (1 s, doubling, at most 5 minutes), or failed after
    /// [`MAX_ATTEMPTS`].
    fn retry(&self, entry: &Entry, error: String) -> Outcome {
        self.retry_after(entry.attempts, error)
    }

    fn retry_after(&self, attempts: i64, error: String) -> Outcome {
        if attempts >= MAX_ATTEMPTS {
            return Outcome::Failed(format!("gave up after {attempts} attempts: {error}"));
        }
        let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
        let wait = 1_000_i64.saturating_mul(1 << exponent).min(300_000);
        Outcome::Retry { error, retry_at: now_ms() + wait }
    }

    /// The session's line items from Stripe's API; unknown items (and a note why) without an
    /// API key, or once the API has refused or failed for good.
    async fn line_items(&self, config: &StripeConfig, session: &Session, attempts: i64) -> Result<Items, Outcome> {
        let Some(key) = &config.api_key else {
            return Ok(Items::unknown("no Stripe API key is configured, so the items were not read"));
        };
        match stripe_api::line_items(&self.http, config, key.expose_secret(), &session.id).await {
            Ok(items) if items.is_empty() => Ok(Items::unknown("Stripe listed no line items for the session")),
            Ok(items) => Ok(Items { items, note: None }),
            Err(stripe_api::Error::Transient(e)) if attempts < MAX_ATTEMPTS => Err(self.retry_after(attempts, e)),
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

/// Why a photo could not be fetched.
enum Fetch {
    /// The network, a timeout, 429 or 5xx: worth another try.
    Transient(String),
    /// Anything else: it will not work by trying again.
    Refused(String),
}

/// GETs `url`, refusing bodies over `max` bytes as they stream in.
async fn fetch_capped(http: &reqwest::Client, url: &url::Url, max: usize) -> Result<bytes::Bytes, Fetch> {
    let mut res = http.get(url.clone()).send().await.map_err(|e| Fetch::Transient(e.to_string()))?;
    let status = res.status();
    if status.as_u16() == 429 || status.is_server_error() {
        return Err(Fetch::Transient(format!("the server answered {status}")));
    }
    if !status.is_success() {
        return Err(Fetch::Refused(format!("the server answered {status}")));
    }
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| Fetch::Transient(e.to_string()))? {
        if body.len() + chunk.len() > max {
            return Err(Fetch::Refused(format!("it is larger than {max} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A refusal in a sentence.
fn refusal_text(refusal: &crate::domain::transition::Refusal) -> String {
    use crate::domain::transition::Refusal;
    match refusal {
        Refusal::StaleStage { current, expected } => format!("the order is at `{current}`, not `{expected}`"),
        Refusal::NotAllowed { current, reason, .. } => format!("from `{current}`: {reason}"),
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
