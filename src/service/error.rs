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
    /// Anything else that is our fault: what we were doing, and the error that stopped it
    /// (kept as the source, so logs show the whole chain).
    #[error("{context}")]
    Internal {
        /// What failed, e.g. "cannot store a photo".
        context: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// Any error, kept as the source of another.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An error that is nothing but its message (an invariant kiln found broken).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Broken(pub String);

impl ServiceError {
    /// An internal error: `context` says what failed, `source` why.
    pub fn internal(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Internal { context: context.into(), source: source.into() }
    }

    /// An internal error with no underlying cause (a broken invariant).
    pub fn broken(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Internal { context: message.clone(), source: Box::new(Broken(message)) }
    }

    /// The error and every source below it, joined by ": ", for logs.
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = std::error::Error::source(self);
        while let Some(e) = next {
            let text = e.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = e.source();
        }
        out
    }

    /// An invalid-field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid { field: field.into(), message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_keeps_every_cause() {
        let io = std::io::Error::other("disk full");
        let e = ServiceError::internal("cannot store a photo", io);
        assert_eq!(e.to_string(), "cannot store a photo");
        assert_eq!(e.chain(), "cannot store a photo: disk full");
        let e = ServiceError::Store(sqlx::Error::PoolTimedOut);
        assert!(e.chain().starts_with("database error: "), "{}", e.chain());
        assert_eq!(ServiceError::broken("stored status is invalid").chain(), "stored status is invalid");
    }
}
