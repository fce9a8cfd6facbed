//! Stripe Checkout for new orders (seed 4's flow): kiln creates the order awaiting payment,
//! then a Checkout Session for it through Stripe's API; the customer pays on Stripe's page and
//! lands on the order's tracking page; the `checkout.session.completed` webhook (or
//! `async_payment_succeeded`) puts the order into its first stage.

use std::sync::OnceLock;
use std::time::Duration;

use secrecy::ExposeSecret;
use serde_json::json;

use super::stripe_api::{self, CheckoutLine, NewSession};
use crate::crypto::random_token;
use crate::domain::change::Change;
use crate::domain::model::{Actor, Order};
use crate::domain::order::Source;
use crate::domain::transition::Action;
use crate::service::{NewOrder, Service, ServiceError};

/// Stripe's limit on line items of a payment-mode session.
pub const MAX_LINES: usize = 100;
/// Attempts at creating the session when Stripe is unreachable (same idempotency key).
const ATTEMPTS: u32 = 3;

/// A Checkout to start: the order, and the price of each of its items.
#[derive(Debug, Clone)]
pub struct CheckoutRequest {
    /// The order, as the API would create it (its items in the same order as `unit_amounts`).
    pub order: NewOrder,
    /// Price of one of each item, in the currency's smallest unit.
    pub unit_amounts: Vec<i64>,
    /// Lowercase ISO currency code.
    pub currency: String,
}

/// A started Checkout.
#[derive(Debug, Clone)]
pub struct Started {
    /// The order, awaiting payment.
    pub order: Order,
    /// Its tracking page (where the customer lands after paying).
    pub tracking_url: String,
    /// `cs_…`.
    pub session_id: String,
    /// Stripe's payment page for the customer.
    pub checkout_url: String,
}

/// Why a Checkout could not be started.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    /// `[intake.stripe]` with an `api_key` is not configured.
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The order itself was refused (a field is wrong).
    #[error(transparent)]
    Order(#[from] ServiceError),
    /// Stripe refused or could not be reached; the order was cancelled.
    #[error("Stripe did not create the Checkout Session: {message} (order {reference} was cancelled)")]
    Stripe {
        /// Stripe's or the network's message.
        message: String,
        /// The cancelled order.
        reference: String,
    },
}

fn http() -> &'static reqwest::Client {
    static CLIENT: OnceLock<reqwest::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default()
    })
}

/// Creates the order awaiting payment and its Checkout Session, and links the two.
pub async fn start(service: &Service, request: CheckoutRequest, actor: &Actor) -> Result<Started, CheckoutError> {
    let config = service.config().intake.stripe.as_ref().ok_or(CheckoutError::NotConfigured(
        "Stripe Checkout is not configured on this kiln ([intake.stripe] with an api_key)",
    ))?;
    let key = config.api_key.as_ref().ok_or(CheckoutError::NotConfigured(
        "Stripe Checkout needs [intake.stripe] api_key (a key that may create Checkout Sessions)",
    ))?;
    let lines: Vec<CheckoutLine> = request
        .order
        .items
        .iter()
        .zip(&request.unit_amounts)
        .map(|(item, amount)| {
            let name = match &item.variant {
                Some(v) => format!("{} ({v})", item.description),
                None => item.description.clone(),
            };
            CheckoutLine { name, unit_amount: *amount, quantity: item.quantity }
        })
        .collect();
    let total: i64 = lines.iter().map(|l| l.unit_amount.saturating_mul(i64::from(l.quantity))).sum();
    let mut new = request.order;
    let workflow = new.workflow.clone();
    let summary = format!(
        "Awaiting payment through Stripe Checkout: {} {}.",
        super::minor_units(total),
        request.currency.to_uppercase()
    );
    new.notes = if new.notes.is_empty() { summary } else { format!("{summary}\n{}", new.notes) };
    if let Some(meta) = new.metadata.as_object_mut() {
        meta.insert("kiln_checkout".to_owned(), json!({ "amount_total": total, "currency": request.currency }));
    }
    let email = new.customer.email.as_ref().map(|e| e.as_str().to_owned());
    let (order, tracking_url) = service.create_awaiting_payment(new, actor).await?;
    let reference = order.reference.to_string();
    let session = NewSession {
        reference: &reference,
        workflow: &workflow,
        currency: &request.currency,
        lines: &lines,
        email: email.as_deref(),
        success_url: config.success_url.as_deref().unwrap_or(&tracking_url),
        cancel_url: config.cancel_url.as_deref().unwrap_or(&tracking_url),
    };
    // One key for every attempt: Stripe answers a repeated request with the first result.
    let idempotency_key = format!("kiln-checkout-{reference}-{}", random_token(12));
    let mut attempt = 0;
    let created = loop {
        attempt += 1;
        match stripe_api::create_session(http(), config, key.expose_secret(), &idempotency_key, &session).await {
            Ok(created) => break Ok(created),
            Err(stripe_api::Error::Transient(e)) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, order = %reference, attempt, "Stripe Checkout Session not created yet");
                tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
            }
            Err(stripe_api::Error::Transient(e) | stripe_api::Error::Refused(e)) => break Err(e),
        }
    };
    let created = match created {
        Ok(created) => created,
        Err(message) => {
            // No session, so nobody can pay: the order must not wait for ever.
            let cancel = Change::Act {
                action: Action::Cancel,
                expected_stage: None,
                note: None,
                internal_note: Some(format!("Stripe did not create the Checkout Session: {message}")),
                photo_ids: Vec::new(),
            };
            let system = Actor { name: "stripe".to_owned(), source: Source::System };
            if let Err(e) = service.change(&reference, &cancel, &system).await {
                tracing::warn!(error = %e.chain(), order = %reference, "cannot cancel an order without a session");
            }
            return Err(CheckoutError::Stripe { message, reference });
        }
    };
    if !service.link_order(order.id, "stripe", &created.id).await? {
        return Err(CheckoutError::Order(ServiceError::broken(format!(
            "Stripe session {} already stands for another order",
            created.id
        ))));
    }
    Ok(Started { order, tracking_url, session_id: created.id, checkout_url: created.url })
}
