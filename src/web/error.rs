//! Errors at the HTTP edge, rendered as RFC 9457 problem details that name the field or rule.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use crate::domain::transition::Refusal;
use crate::service::ServiceError;

/// `Result` with [`ApiError`] as the default error.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// A problem-details body.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `urn:kiln:problem:move-not-allowed`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// What went wrong this time.
    pub detail: String,
    /// The request field at fault, as a path such as `customer.email` or `items[0].quantity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Further facts, e.g. `current_stage` and `allowed_moves` for a refused move.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: Map<String, Value>,
}

/// One invalid field among several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field.
    pub field: String,
    /// What is wrong with it.
    pub detail: String,
}

/// An error the API reports to its caller.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    problem: Box<Problem>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// A problem with a slug (`urn:kiln:problem:<slug>`), title and detail.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            problem: Box::new(Problem {
                kind: format!("urn:kiln:problem:{slug}"),
                title: title.to_owned(),
                status: status.as_u16(),
                detail: detail.into(),
                field: None,
                extra: Map::new(),
            }),
            retry_after: None,
        }
    }

    /// Names the field at fault.
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.problem.field = Some(field.into());
        self
    }

    /// Adds a member to the body.
    pub fn with(mut self, key: &str, value: impl Serialize) -> Self {
        self.problem.extra.insert(key.to_owned(), json!(value));
        self
    }

    /// Adds a `Retry-After` header.
    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 400: the request could not be read.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed-request", "Malformed request", detail)
    }

    /// 422: one field is invalid.
    pub fn invalid(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::invalid_fields(vec![FieldError { field: field.into(), detail: detail.into() }])
    }

    /// 422: several fields are invalid; the first is named at the top level.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let first = errors
            .first()
            .cloned()
            .unwrap_or(FieldError { field: String::new(), detail: "invalid request".to_owned() });
        let summary = if errors.len() > 1 {
            format!("{}: {} (and {} more)", first.field, first.detail, errors.len() - 1)
        } else {
            format!("{}: {}", first.field, first.detail)
        };
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "Invalid field", summary)
            .field(first.field)
            .with("errors", errors)
    }

    /// 404 for something the caller named.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    /// 500 with an opaque body; the cause is logged here, once.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "something went wrong on our side; it has been logged",
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The body.
    pub fn problem(&self) -> &Problem {
        &self.problem
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&*self.problem).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"kiln\""));
        }
        response
    }
}

/// A refused photo: 413 too big, 415 not an image we take, 422 an image we will not decode.
fn photo_problem(field: String, err: &crate::media::PhotoError) -> ApiError {
    use crate::media::PhotoError as E;
    let (status, slug, title) = match err {
        E::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "photo-too-large", "Photo too large"),
        E::UnsupportedType { .. } => {
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "photo-unsupported-type", "Unsupported photo type")
        }
        E::Encode { .. } => return ApiError::internal(err),
        E::Empty | E::TooManyPixels { .. } | E::DecoderLimit { .. } | E::Undecodable { .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, "photo-refused", "Photo refused")
        }
    };
    ApiError::new(status, slug, title, format!("{field}: {err}")).field(field)
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::OrderNotFound(reference) => Self::new(
                StatusCode::NOT_FOUND,
                "order-not-found",
                "Order not found",
                format!("no order has the reference `{reference}`"),
            ),
            ServiceError::Refused(Refusal::StaleStage { current, expected }) => Self::new(
                StatusCode::CONFLICT,
                "stale-stage",
                "Order is not in the expected stage",
                format!("the order is in stage `{current}`, not `{expected}`; reload it and decide again"),
            )
            .field("expected_stage")
            .with("current_stage", current)
            .with("expected_stage", expected),
            ServiceError::Refused(Refusal::NotAllowed { current, reason, allowed }) => {
                let options: Vec<String> = allowed
                    .iter()
                    .map(|a| a.to.as_ref().map_or_else(|| a.action.to_string(), |to| format!("move to `{to}`")))
                    .collect();
                let detail = if options.is_empty() {
                    format!("{reason}; nothing more can happen to this order")
                } else {
                    format!("{reason}; from `{current}` you can: {}", options.join(", "))
                };
                Self::new(StatusCode::CONFLICT, "move-not-allowed", "Move not allowed", detail)
                    .with("current_stage", current)
                    .with("allowed_moves", allowed)
            }
            ServiceError::Busy => {
                Self::new(StatusCode::CONFLICT, "concurrent-change", "Concurrent change", err.to_string())
                    .retry_after(1)
            }
            ServiceError::Invalid { field, message } => Self::invalid(field, message),
            ServiceError::DuplicateReference(_) => {
                Self::new(StatusCode::CONFLICT, "duplicate-reference", "Reference already used", err.to_string())
                    .field("reference")
            }
            ServiceError::IdempotencyMismatch(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
                err.to_string(),
            )
            .field("Idempotency-Key"),
            ServiceError::Store(sqlx::Error::PoolTimedOut) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Overloaded",
                "the database is busy; retry shortly",
            )
            .retry_after(1),
            ServiceError::Photo { field, source } => photo_problem(field, &source),
            e @ (ServiceError::Store(_) | ServiceError::Internal { .. }) => Self::internal(e.chain()),
        }
    }
}
