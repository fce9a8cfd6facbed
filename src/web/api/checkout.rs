//! `POST /checkout`: a new order paid through Stripe Checkout. The order waits for its
//! payment (it is no work for the shop until then); the answer carries Stripe's payment page.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::orders::{CustomerIn, ItemIn, OrderIn, OrderOut};
use crate::intake::checkout::{self, CheckoutError, CheckoutRequest, MAX_LINES};
use crate::service::Service;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiJson, Writer};
use crate::web::validate::Check;

/// Stripe's largest amount (eight digits in the smallest unit).
const MAX_AMOUNT: i64 = 99_999_999;

/// Routes under `/checkout`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_checkout))
}

/// A new order to be paid through Stripe Checkout.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutIn {
    /// Workflow key, e.g. `print`.
    #[schema(example = "print")]
    pub workflow: String,
    /// Who orders it.
    pub customer: CustomerIn,
    /// What to make and what each costs (1–100 items).
    pub items: Vec<CheckoutItemIn>,
    /// ISO currency code, e.g. `eur`.
    #[schema(example = "eur")]
    pub currency: String,
    /// `rush` or `standard` (default).
    #[schema(example = "standard")]
    pub priority: Option<String>,
    /// Promised date, `YYYY-MM-DD`.
    pub due_date: Option<String>,
    /// Notes only the shop sees.
    pub notes: Option<String>,
    /// Free-form JSON object (up to 16 KiB).
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

/// One thing to make, with its price.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutItemIn {
    /// What it is (the product name on Stripe's page).
    #[schema(example = "Wedding invitations, letterpress")]
    pub description: String,
    /// Variant or size.
    pub variant: Option<String>,
    /// How many (≥ 1).
    #[schema(example = 120)]
    pub quantity: i64,
    /// Material or technique.
    pub material: Option<String>,
    /// Price of one, in the currency's smallest unit (cents), 0–99999999.
    #[schema(example = 80)]
    pub unit_amount: i64,
}

/// A started Checkout.
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckoutOut {
    /// Stripe's payment page: send the customer there.
    #[schema(example = "https://checkout.stripe.com/c/pay/cs_test_a1b2c3")]
    pub checkout_url: String,
    /// The Checkout Session's id (`cs_…`).
    pub session_id: String,
    /// The order, `awaiting_payment` until Stripe reports it paid.
    pub order: OrderOut,
}

/// Start a Stripe Checkout for a new order.
///
/// Creates the order awaiting payment (no work for the shop, nobody notified) and a Checkout
/// Session through Stripe's API; send the customer to `checkout_url`. After paying they land on
/// the order's tracking page, and Stripe's `checkout.session.completed` webhook puts the order
/// into its workflow's first stage. An expired or failed Checkout cancels the order.
#[utoipa::path(
    post, path = "/checkout", tag = "orders",
    request_body = CheckoutIn,
    responses(
        (status = 201, description = "Checkout started", body = CheckoutOut),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "Stripe Checkout is not configured", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "Stripe refused or was unreachable; the order was cancelled", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn start_checkout(
    State(service): State<Service>,
    writer: Writer,
    ApiJson(body): ApiJson<CheckoutIn>,
) -> Result<Response> {
    let request = body.parse()?;
    let started = checkout::start(&service, request, &writer.actor()).await.map_err(|e| match e {
        CheckoutError::NotConfigured(why) => {
            ApiError::new(StatusCode::NOT_FOUND, "checkout-not-configured", "Checkout not configured", why)
        }
        CheckoutError::Order(e) => ApiError::from(e),
        e @ CheckoutError::Stripe { .. } => {
            ApiError::new(StatusCode::BAD_GATEWAY, "stripe-refused", "Stripe refused the Checkout", e.to_string())
        }
    })?;
    let items = crate::store::orders::items(service.db(), started.order.id).await.map_err(ApiError::internal)?;
    let order = OrderOut::new(&started.order, &items, Some(started.tracking_url), service.workflows());
    let out = CheckoutOut { checkout_url: started.checkout_url, session_id: started.session_id, order };
    let mut resp = (StatusCode::CREATED, axum::Json(out)).into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/orders/{}", started.order.reference)) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    Ok(resp)
}

impl CheckoutIn {
    /// Parses every field, reporting all invalid ones together.
    fn parse(self) -> Result<CheckoutRequest, ApiError> {
        let mut check = Check::default();
        let currency = self.currency.trim().to_ascii_lowercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            check.fail("currency", "must be a three-letter ISO currency code such as `eur`");
        }
        if self.items.len() > MAX_LINES {
            check.fail("items", format!("at most {MAX_LINES} items per Checkout (Stripe's limit)"));
        }
        if self.priority.as_deref() == Some("hold") {
            check.fail("priority", "a Checkout order cannot start on hold; use `rush` or `standard`");
        }
        let mut unit_amounts = Vec::with_capacity(self.items.len());
        let mut items = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.into_iter().enumerate() {
            if !(0..=MAX_AMOUNT).contains(&item.unit_amount) {
                check.fail(format!("items[{i}].unit_amount"), format!("must be a whole number from 0 to {MAX_AMOUNT}"));
            }
            unit_amounts.push(item.unit_amount);
            items.push(ItemIn {
                description: item.description,
                variant: item.variant,
                quantity: item.quantity,
                material: item.material,
                metadata: Some(serde_json::json!({ "unit_amount": item.unit_amount, "currency": currency })),
            });
        }
        check.finish()?;
        let order = OrderIn {
            reference: None,
            workflow: self.workflow,
            stage: None,
            priority: self.priority,
            customer: self.customer,
            items,
            due_date: self.due_date,
            notes: self.notes,
            customer_note: None,
            external_ids: None,
            metadata: Some(self.metadata.unwrap_or_else(|| Value::Object(serde_json::Map::new()))),
        }
        .parse()?;
        Ok(CheckoutRequest { order, unit_amounts, currency })
    }
}
