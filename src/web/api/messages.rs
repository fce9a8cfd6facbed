//! The delivery log: every message about an order with its state and attempts, and the
//! operator's retry of a dead one.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::service::Service;
use crate::store::from_ms;
use crate::web::AppState;
use crate::web::error::{ApiError, Problem, Result};
use crate::web::extract::{ApiPath, Reader, Writer};

/// Routes for the delivery log.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_messages)).routes(routes!(retry_message))
}

fn time(ms: i64) -> String {
    from_ms(ms).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One attempt to send.
#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    /// Attempt number within the current round.
    pub attempt: i64,
    /// When (RFC 3339).
    pub at: String,
    /// `sent`, `retrying`, `dead` or `skipped`.
    pub outcome: String,
    /// The provider's answer or the error.
    pub detail: String,
}

/// One message.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    /// Id (also in the message's `Message-ID` / `webhook-id`).
    pub id: i64,
    /// The event it tells about.
    pub event_id: Option<i64>,
    /// `email`, `sms`, `whatsapp`, `telegram`, `webhook` (or `none` when no channel was possible).
    pub channel: String,
    /// Address, number, chat id or webhook name.
    pub recipient: String,
    /// `queued`, `sending`, `sent`, `retrying`, `dead` or `skipped`.
    pub state: String,
    /// Attempts in the current round.
    pub attempts: i64,
    /// The next attempt, when queued or retrying.
    pub next_attempt_at: Option<String>,
    /// The last error, or why it was skipped.
    pub last_error: Option<String>,
    /// When the provider accepted it.
    pub sent_at: Option<String>,
    /// When it was queued.
    pub created_at: String,
    /// Every attempt, oldest first.
    pub attempt_log: Vec<AttemptOut>,
}

/// Every message about an order, with its state and attempts.
#[utoipa::path(
    get, path = "/orders/{reference}/messages", tag = "messages",
    params(("reference" = String, Path, description = "Order reference")),
    responses(
        (status = 200, description = "Messages, oldest first", body = Vec<MessageOut>),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["read"]))
)]
async fn list_messages(
    State(service): State<Service>,
    _reader: Reader,
    ApiPath(reference): ApiPath<String>,
) -> Result<Json<Vec<MessageOut>>> {
    let (messages, attempts) = service.messages(&reference).await?;
    let out = messages
        .into_iter()
        .map(|m| {
            let state = match m.status.as_str() {
                "pending" => "queued",
                "running" => "sending",
                other => other,
            };
            MessageOut {
                id: m.id,
                event_id: m.event_id,
                channel: m.channel.unwrap_or_default(),
                recipient: m.recipient.unwrap_or_default(),
                next_attempt_at: matches!(state, "queued" | "retrying").then(|| time(m.run_at)),
                state: state.to_owned(),
                attempts: m.attempts,
                last_error: m.last_error,
                sent_at: m.sent_at.map(time),
                created_at: time(m.created_at),
                attempt_log: attempts
                    .iter()
                    .filter(|a| a.job_id == m.id)
                    .map(|a| AttemptOut {
                        attempt: a.attempt,
                        at: time(a.at),
                        outcome: a.outcome.clone(),
                        detail: a.detail.clone(),
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(Json(out))
}

/// The message after an operator's retry.
#[derive(Debug, Serialize, ToSchema)]
pub struct RetryOut {
    /// The message.
    pub id: i64,
    /// `queued`.
    pub state: String,
}

/// Queue a dead message again, for a fresh round of attempts (same message identity).
#[utoipa::path(
    post, path = "/messages/{id}/retry", tag = "messages",
    params(("id" = i64, Path, description = "Message id")),
    responses(
        (status = 202, description = "Queued again", body = RetryOut),
        (status = 404, description = "No dead message has this id", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["write"]))
)]
async fn retry_message(
    State(service): State<Service>,
    _writer: Writer,
    ApiPath(id): ApiPath<String>,
) -> Result<(axum::http::StatusCode, Json<RetryOut>)> {
    let not_found = || ApiError::not_found("no dead message has this id");
    let id: i64 = id.parse().map_err(|_| not_found())?;
    if !service.retry_message(id).await? {
        return Err(not_found());
    }
    Ok((axum::http::StatusCode::ACCEPTED, Json(RetryOut { id, state: "queued".to_owned() })))
}
