//! What can go wrong in a use case, in terms the HTTP edge can map to a status.

use crate::domain::transition::Refusal;

/// A use case failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No order has this reference.
    #[error("no order has the reference `{0}`")]
    OrderNotFound(String),
    /// The workflow refused the change.
    #[error("the change was refused")]
    Refused(Refusal),
    /// The order kept changing under us; the caller may retry.
    #[error("the order was changed by several requests at once; retry")]
    Busy,
    /// A value is not acceptable.
    #[error("{message}")]
    Invalid {
        /// The offending field, as the API names it.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The reference is taken.
    #[error("the reference `{0}` is already used by another order")]
    DuplicateReference(String),
    /// An idempotency key was reused for a different request.
    #[error("the Idempotency-Key `{0}` was already used with a different request body")]
    IdempotencyMismatch(String),
    /// An uploaded photo was refused.
    #[error("{field}: {source}")]
    Photo {
        /// Which upload.
        field: String,
        /// Why.
        source: crate::media::PhotoError,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Store(#[from] sqlx::Error),
    /// Anything else that is our fault.
    #[error("{0}")]
    Internal(String),
}

impl ServiceError {
    /// An invalid-field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }
}
